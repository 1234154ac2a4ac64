// The sign-in page: posts the form as JSON; on success the session cookie is set and the console opens.
const formEl = document.getElementById('login-form');
const errorEl = document.getElementById('login-error');

formEl.addEventListener('submit', (event) => {
  event.preventDefault();
  errorEl.textContent = '';
  const values = Object.fromEntries(new FormData(formEl).entries());
  const button = formEl.querySelector('button');
  button.disabled = true;
  signIn(values)
    .catch((error) => {
      errorEl.textContent = error.message;
    })
    .finally(() => {
      button.disabled = false;
    });
});

async function signIn(values) {
  let response;
  try {
    response = await fetch('/admin/console/api/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify({ login: values.login, password: values.password }),
    });
  } catch (error) {
    throw new Error(`the server could not be reached (${error.message})`);
  }
  const envelope = await response.json().catch(() => null);
  if (envelope?.code !== 0) throw new Error(envelope?.msg ?? `sign-in failed (HTTP ${response.status})`);
  location.assign('/admin/');
}
