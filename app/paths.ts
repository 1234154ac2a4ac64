// Paths relative to the project root, wherever the process was started from.
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const sqlDir = (...parts: string[]) => path.join(projectRoot, 'sql', ...parts);
