// The account page: name, e-mail address, password, sign-in methods, signing out, deleting
// the account.
import * as api from './api.js';
import { navigate } from './router.js';
import { h, page, field, bindForm, notify, notifyError, flashNext, confirmDialog, formatDate } from './ui.js';
import { startSocial, providerLabel } from './view-auth.js';

const section = (title, ...children) => h('section', { class: 'card' }, h('h2', {}, title), ...children);
const DELETE_QUESTION = 'Delete your account with all its polls, votes, posts and recordings? This cannot be undone.';
const submit = (label, kind = 'primary') => h('div', { class: 'actions' }, h('button', { type: 'submit', class: kind }, label));

export async function account({ signal }) {
  const [me, identities, providers] = await Promise.all([
    api.call('GET', '/auth/me', { signal }),
    api.call('GET', '/auth/me/identities', { signal }),
    api.socialProviders().catch(() => []),
  ]);
  api.updateUser(me);

  const summary = h('p', { class: 'lead' });
  const showSummary = (user) => summary.replaceChildren(`Signed in as ${user.name} (${user.email}), member since ${formatDate(user.createdAt)}.`);
  showSummary(me);

  const nameForm = bindForm(
    h('form', { class: 'form' },
      field('Name', { name: 'name', value: me.name, required: true, maxlength: '50', autocomplete: 'name' }),
      submit('Save name')),
    async ({ name }) => {
      const user = await api.call('PATCH', '/auth/me', { json: { name } });
      api.updateUser(user);
      showSummary(user);
      notify(`Your name is now ${user.name}.`);
    });

  // The address: confirmed or not (with the link sent again), and changing it.
  const status = h('p', {});
  const resend = h('button', { type: 'button', class: 'secondary', onClick: async () => {
    resend.disabled = true;
    try {
      await api.call('POST', '/auth/email/verify/resend');
      notify(`We sent a new confirmation link to ${me.email}.`);
    } catch (error) {
      notifyError(error);
    } finally {
      resend.disabled = false;
    }
  } }, 'Send the confirmation link again');
  status.append(
    `Your address is ${me.email}: `,
    h('span', { class: me.emailVerified ? 'badge ok' : 'badge warn' }, me.emailVerified ? 'confirmed' : 'not confirmed yet'),
  );
  const emailForm = bindForm(
    h('form', { class: 'form' },
      field('New e-mail address', { name: 'email', type: 'email', required: true, autocomplete: 'email' }),
      field('Current password', { name: 'currentPassword', type: 'password', required: true, autocomplete: 'current-password' }),
      submit('Change address', 'secondary')),
    async ({ email, currentPassword }, form) => {
      await api.call('PATCH', '/auth/me', { json: { email, currentPassword } });
      form.reset();
      notify(`We sent a link to ${email}. Your address changes when you open it; until then it stays ${me.email}.`);
    });

  const passwordForm = bindForm(
    h('form', { class: 'form' },
      field('Current password', { name: 'currentPassword', type: 'password', required: true, autocomplete: 'current-password' }),
      field('New password', { name: 'password', type: 'password', required: true, minlength: '8', autocomplete: 'new-password' }, '8 to 72 characters.'),
      submit('Change password', 'secondary')),
    async ({ currentPassword, password }, form) => {
      await api.call('PATCH', '/auth/me', { json: { currentPassword, password } });
      form.reset();
      notify('Your password is changed. Every other session (other browsers and devices) is now signed out.');
    });

  // Social sign-in identities linked to the account (signing in with a provider links them).
  const methods = h('ul', { class: 'methods' },
    h('li', {}, me.hasPassword ? 'Password: set.' : 'No password yet. ',
      me.hasPassword ? null : h('a', { href: '#/forgot' }, 'Set one with a reset link')),
    identities.items.map((identity) => {
      const unlink = h('button', { type: 'button', class: 'ghost danger-text', onClick: async () => {
        unlink.disabled = true;
        try {
          await api.call('DELETE', `/auth/me/identities/${encodeURIComponent(identity.provider)}`);
          item.remove();
          notify(`${identity.provider} sign-in is unlinked.`);
        } catch (error) {
          notifyError(error);
          unlink.disabled = false;
        }
      } }, 'Unlink');
      const item = h('li', {}, `${identity.provider}: ${identity.email || 'no e-mail'}, linked ${formatDate(identity.linkedAt)}. `, unlink);
      return item;
    }));

  const signOut = h('button', { type: 'button', class: 'secondary', onClick: async () => {
    signOut.disabled = true;
    try {
      await api.signOut();
      flashNext('You are signed out of this browser.');
    } catch (error) {
      flashNext(`You are signed out here, but the server could not be told: ${error.message}`, 'error');
    }
    navigate('/signin');
  } }, 'Sign out');

  const deleteForm = bindForm(
    h('form', { class: 'form' },
      field('Current password', { name: 'currentPassword', type: 'password', required: true, autocomplete: 'current-password' }, 'Needed to delete the account.'),
      submit('Delete my account', 'danger')),
    async ({ currentPassword }) => {
      if (!(await confirmDialog(DELETE_QUESTION, { confirm: 'Delete everything' }))) return;
      await api.deleteAccount({ currentPassword });
      flashNext('Your account and everything in it are deleted.');
      navigate('/signup');
    });

  // Without a password, a fresh sign-in with a linked provider proves it is the owner: the
  // question first, then the provider's page, whose answer deletes (view-auth.js, finishSocial).
  const linked = providers.filter((provider) => identities.items.some((identity) => identity.provider === provider.name));
  const confirmWith = linked.length
    ? h('div', { class: 'actions start' }, linked.map((provider) =>
      h('button', { type: 'button', class: 'danger', onClick: async () => {
        if (await confirmDialog(`${DELETE_QUESTION} ${providerLabel(provider.name)} asks you to confirm next.`, { confirm: 'Delete everything' })) {
          startSocial(provider, 'delete', '/account');
        }
      } }, `Confirm with ${providerLabel(provider.name)}`)))
    : h('p', {}, 'Deleting needs the password or a linked sign-in method offered here. ', h('a', { href: '#/forgot' }, 'Set a password with a reset link'));

  return page('Your account',
    summary,
    section('Profile', nameForm),
    section('E-mail address', status, me.emailVerified ? null : h('p', {}, resend), emailForm),
    section('Password', me.hasPassword ? passwordForm : h('p', {}, 'This account signs in with a provider only. ', h('a', { href: '#/forgot' }, 'Set a password with a reset link'))),
    section('Sign-in methods', methods,
      identities.items.length ? null : h('p', { class: 'hint' }, 'No social sign-in is linked to this account.')),
    section('Sign out',
      h('p', {}, 'Signing out ends the session of this browser. There is no separate "sign out everywhere": changing your password above ends every other session at once, on every device.'),
      h('div', { class: 'actions' }, signOut)),
    section('Delete the account',
      h('p', {}, 'Everything you made goes with it: polls, votes, posts, images and recordings.'),
      me.hasPassword ? deleteForm : confirmWith));
}
