// views/auth.js — the login and registration screens.
//
// mountAuth(root, mode, onSession): mode 'login' or 'register'; onSession(s)
// runs with the answer of POST /v1/sessions once the user is in.

import { describeError } from '../api.js';
import { login, register } from '../actions.js';
import { h, icon } from '../dom.js';

export function mountAuth(root, mode, onSession) {
  const isLogin = mode === 'login';
  const error = h('p', { class: 'form-error', role: 'alert' });
  const username = h('input', {
    id: 'auth-username', name: 'username', type: 'text', required: true, autocomplete: 'username',
    autocapitalize: 'none', spellcheck: 'false', minlength: 3, maxlength: 32,
    pattern: '[A-Za-z0-9_.\\-]{3,32}', 'aria-describedby': isLogin ? null : 'auth-username-hint',
  });
  const displayName = isLogin ? null : h('input', {
    id: 'auth-display', name: 'display_name', type: 'text', autocomplete: 'name', maxlength: 64,
  });
  const password = h('input', {
    id: 'auth-password', name: 'password', type: 'password', required: true, minlength: isLogin ? 1 : 12,
    maxlength: 256, autocomplete: isLogin ? 'current-password' : 'new-password',
    'aria-describedby': isLogin ? null : 'auth-password-hint',
  });
  const submit = h('button', { type: 'submit', class: 'btn primary wide' }, isLogin ? 'Log in' : 'Create account');

  const form = h('form', { class: 'auth-form', 'aria-labelledby': 'auth-title', novalidate: true },
    error,
    h('div', { class: 'field' },
      h('label', { for: 'auth-username' }, 'Username'),
      username,
      isLogin ? null : h('p', { class: 'hint', id: 'auth-username-hint' }, '3–32 letters, digits, “_”, “.” or “-”.')),
    isLogin ? null : h('div', { class: 'field' },
      h('label', { for: 'auth-display' }, 'Display name ', h('span', { class: 'optional' }, '(optional)')),
      displayName),
    h('div', { class: 'field' },
      h('label', { for: 'auth-password' }, 'Password'),
      password,
      isLogin ? null : h('p', { class: 'hint', id: 'auth-password-hint' }, 'At least 12 characters; not a common password.')),
    submit);

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const bad = [username, password].find((el) => !el.checkValidity());
    if (bad) {
      error.textContent = bad === username
        ? 'Enter a username of 3–32 letters, digits, “_”, “.” or “-”.'
        : (isLogin ? 'Enter your password.' : 'Enter a password of at least 12 characters.');
      bad.setAttribute('aria-invalid', 'true');
      bad.focus();
      return;
    }
    username.removeAttribute('aria-invalid');
    password.removeAttribute('aria-invalid');
    submit.disabled = true;
    submit.textContent = isLogin ? 'Logging in…' : 'Creating account…';
    try {
      const s = isLogin
        ? await login(username.value.trim(), password.value)
        : await register(username.value.trim(), password.value, displayName.value.trim());
      onSession(s);
    } catch (err) {
      error.textContent = describeError(err);
      submit.disabled = false;
      submit.textContent = isLogin ? 'Log in' : 'Create account';
      (err.code === 'username_taken' || err.code === 'invalid_username' ? username : password).focus();
    }
  });

  const page = h('main', { id: 'main', class: 'auth', tabindex: '-1' },
    h('div', { class: 'auth-card' },
      h('div', { class: 'brand' }, h('span', { class: 'brand-mark' }, icon('chat')), h('span', null, 'chat')),
      h('h1', { id: 'auth-title', class: 'auth-title' }, isLogin ? 'Log in' : 'Create your account'),
      form,
      h('p', { class: 'auth-switch' },
        isLogin ? 'New here? ' : 'Have an account? ',
        h('a', { href: isLogin ? '#/register' : '#/login' }, isLogin ? 'Create an account' : 'Log in'))));
  root.replaceChildren(page);
  username.focus();
  return { unmount() {} };
}
