// Signing up, in, and the pages the e-mails link to: forgot, reset, verify.
import * as api from './api.js';
import { navigate } from './router.js';
import { h, page, field, bindForm, flashNext, formError, describe } from './ui.js';

const PASSWORD_HINT = '8 to 72 characters.';

/** Where to go after signing in: a page of the app ("/polls/42"), never another site. */
function nextPage(query) {
  const next = query.get('next') || '';
  return /^\/[a-z]/i.test(next) && !next.startsWith('/signin') ? next : '/polls';
}

export function signIn({ query }) {
  const form = bindForm(
    h('form', { class: 'card form' },
      field('E-mail address', { name: 'email', type: 'email', autocomplete: 'email', required: true }),
      field('Password', { name: 'password', type: 'password', autocomplete: 'current-password', required: true }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Sign in'))),
    async ({ email, password }) => {
      await api.signIn(email, password);
      navigate(nextPage(query));
    });
  return page('Sign in', form,
    h('p', { class: 'aside' }, h('a', { href: '#/forgot' }, 'Forgot your password?')),
    h('p', { class: 'aside' }, 'New here? ', h('a', { href: `#/signup${query.get('next') ? `?next=${encodeURIComponent(query.get('next'))}` : ''}` }, 'Create an account')));
}

export function signUp({ query }) {
  const form = bindForm(
    h('form', { class: 'card form' },
      field('Name', { name: 'name', autocomplete: 'name', required: true, maxlength: '50' }, 'How others see you on the board and in polls.'),
      field('E-mail address', { name: 'email', type: 'email', autocomplete: 'email', required: true }),
      field('Password', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: '8' }, PASSWORD_HINT),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Create account'))),
    async ({ name, email, password }) => {
      await api.signUp(name, email, password);
      flashNext(`Welcome, ${api.user().name}! We sent a link to ${api.user().email} to confirm the address.`);
      navigate(nextPage(query));
    });
  return page('Create an account', form,
    h('p', { class: 'aside' }, 'Already have one? ', h('a', { href: '#/signin' }, 'Sign in')));
}

export function forgot() {
  const done = h('div', { class: 'card', hidden: true, role: 'status' });
  const form = bindForm(
    h('form', { class: 'card form' },
      h('p', {}, 'Enter the address of your account and we will send you a link to choose a new password.'),
      field('E-mail address', { name: 'email', type: 'email', autocomplete: 'email', required: true }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Send the link'))),
    async ({ email }) => {
      await api.call('POST', '/auth/password/forgot', { json: { email }, auth: false });
      // The answer is the same whether or not the account exists, and so is this text.
      done.replaceChildren(
        h('p', {}, `If ${email} belongs to an account, a link to reset its password is on its way. It works for 30 minutes, once.`),
        h('p', {}, h('a', { href: '#/signin' }, 'Back to sign in')));
      form.hidden = true;
      done.hidden = false;
    });
  return page('Forgot your password?', form, done);
}

export function reset({ query }) {
  const token = query.get('token');
  if (!token) {
    return page('Choose a new password',
      h('p', {}, 'This page needs the link from the e-mail. ', h('a', { href: '#/forgot' }, 'Ask for a new link')));
  }
  const form = bindForm(
    h('form', { class: 'card form' },
      field('New password', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: '8' }, PASSWORD_HINT),
      field('New password, again', { name: 'repeat', type: 'password', autocomplete: 'new-password', required: true }),
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Set the password'))),
    async ({ password, repeat }, formEl) => {
      if (password !== repeat) {
        formError(formEl, 'The two passwords differ.');
        return;
      }
      try {
        api.keepSession(await api.call('POST', '/auth/password/reset', { json: { token, password }, auth: false }));
      } catch (error) {
        if (error.code !== 'invalid_token') throw error;
        formError(formEl, describe(error));
        formEl.querySelector('.form-error').append(' ', h('a', { href: '#/forgot' }, 'Ask for a new link'));
        return;
      }
      flashNext('Your new password is set and you are signed in. Every other session has been signed out.');
      navigate('/polls');
    });
  return page('Choose a new password', form);
}

export async function verify({ query, signal }) {
  const token = query.get('token');
  if (!token) return page('Confirm your address', h('p', {}, 'This page needs the link from the e-mail.'));
  try {
    const user = await api.call('POST', '/auth/email/verify', { json: { token }, auth: false, signal });
    api.updateUser(user);
    return page('Address confirmed',
      h('p', { class: 'card success' }, `Thank you: ${user.email} is confirmed.`),
      h('p', {}, h('a', { href: api.signedIn() ? '#/account' : '#/signin' }, api.signedIn() ? 'Go to your account' : 'Sign in')));
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    return page('Confirm your address',
      h('p', { class: 'card form-error' }, describe(error)),
      h('p', {}, api.signedIn()
        ? h('a', { href: '#/account' }, 'Send a new link from your account')
        : 'Sign in and send a new link from your account.'));
  }
}
