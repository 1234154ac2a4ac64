// The team's heavy-run lock (flock(1) on a file), held from a Node process for as long as it wants:
// a child `flock -s|-x FILE` runs `cat` on a pipe and holds the lock until the pipe is closed. Long
// bench work that measures nothing (generating history) takes the SHARED lock one step at a time,
// so an exclusive run (a full suite, a timing) waiting for the lock gets it between two steps
// instead of behind the whole generation.
import { spawn } from 'node:child_process';

export type Release = () => Promise<void>;

export function holdLock(file: string, mode: 'shared' | 'exclusive'): Promise<Release> {
  const child = spawn('flock', [mode === 'shared' ? '-s' : '-x', file, '-c', 'echo held; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let held = false;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      if (!held) reject(new Error(`flock ${file} exited with ${code} before holding the lock`));
    });
    child.stdout.once('data', () => {
      held = true;
      resolve(async () => {
        child.stdin.end();
        await exited;
      });
    });
  });
}

/** Runs fn holding the lock (shared or exclusive); without a file, just runs it. */
export async function withLock<T>(file: string | undefined, mode: 'shared' | 'exclusive', fn: () => Promise<T>): Promise<T> {
  if (!file) return fn();
  const release = await holdLock(file, mode);
  try {
    return await fn();
  } finally {
    await release();
  }
}
