// The board: posts newest first with their images, a post's editor (images checked before
// they are sent), and deleting one's own posts.
import * as api from './api.js';
import { navigate } from './router.js';
import { h, page, field, bindForm, pager, qs, notify, notifyError, flashNext, confirmDialog, formError, formatBytes, timeEl } from './ui.js';

const MAX_IMAGES = 10;
const MAX_IMAGE_BYTES = 10 * 1024 * 1024;
const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
const postPath = (id) => `/feeds/${encodeURIComponent(id)}`;

export async function board({ query, signal }) {
  const author = query.get('author');
  const me = api.user();
  const list = h('div', { class: 'posts' });
  const empty = h('p', { class: 'empty', hidden: true }, author ? 'No posts by this author.' : 'Nothing here yet. Write the first post!');
  const filter = h('p', { class: 'filter', hidden: !author });
  const more = pager(async (cursor) => {
    const result = await api.call('GET', `/feeds${qs({ limit: 10, author, cursor })}`, { signal, auth: false });
    list.append(...result.items.map((post) => postCard(post, me)));
    empty.hidden = list.childElementCount > 0;
    if (author) {
      const name = result.items[0]?.author.name;
      filter.replaceChildren(`Showing the posts of ${name || 'one author'}. `, h('a', { href: '#/board' }, 'Show everyone\'s'));
    }
    return result.nextCursor;
  });
  await more.start();
  const action = me
    ? h('a', { class: 'button primary', href: '#/board/new' }, 'New post')
    : h('a', { class: 'button secondary', href: '#/signin?next=/board/new' }, 'Sign in to post');
  return page('Board', h('div', { class: 'toolbar' }, action), filter, list, empty, more.el);
}

function postCard(post, me) {
  const titleId = `post-${post.id}`;
  const mine = me && post.author.id === me.id;
  const card = h('article', { class: 'card post', 'aria-labelledby': titleId },
    h('h2', { id: titleId }, post.title),
    h('p', { class: 'meta' },
      h('a', { href: `#/board?author=${encodeURIComponent(post.author.id)}`, title: 'Show only this author\'s posts' }, post.author.name || 'Unknown author'),
      ' · ', timeEl(post.createdAt),
      post.updatedAt !== post.createdAt ? ' · edited' : ''), // (to the second: a quick fix may not show)
    post.content ? h('p', { class: 'content' }, post.content) : null,
    post.images.length
      ? h('div', { class: 'gallery' }, post.images.map((image, i) =>
        h('a', { href: image.url, target: '_blank', rel: 'noopener' },
          h('img', { src: image.url, alt: `Image ${i + 1} of ${post.images.length}`, loading: 'lazy' }))))
      : null,
    mine
      ? h('div', { class: 'actions' },
        h('a', { class: 'button secondary', href: `#/board/${encodeURIComponent(post.id)}/edit` }, 'Edit'),
        h('button', { type: 'button', class: 'danger', onClick: () => remove(post, card) }, 'Delete'))
      : null);
  return card;
}

async function remove(post, card) {
  if (!(await confirmDialog(`Delete the post "${post.title}" and its images?`))) return;
  try {
    await api.call('DELETE', postPath(post.id));
    card.remove();
    notify('The post is deleted.');
  } catch (error) {
    notifyError(error);
  }
}

// --- The editor ---------------------------------------------------------------------------

/** What the first bytes say a file is (the feed service checks the same way). */
async function sniff(file) {
  const b = new Uint8Array(await file.slice(0, 12).arrayBuffer());
  const starts = (...bytes) => bytes.every((x, i) => b[i] === x);
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'image/png';
  if (starts(0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'image/gif';
  if (starts(0x52, 0x49, 0x46, 0x46) && String.fromCharCode(...b.slice(8, 12)) === 'WEBP') return 'image/webp';
  return null;
}

export async function postEditor({ params, signal }) {
  const post = params.id ? await api.call('GET', postPath(params.id), { signal }) : null;
  if (post && post.author.id !== api.user().id) return page('Edit post', h('p', {}, 'Only the author can edit this post.'));

  const removed = new Set(); // ids of existing images to remove
  const added = []; // {file, url} of new images, in order
  const previews = h('ul', { class: 'previews', 'aria-label': 'Images of the post' });
  const problems = h('ul', { class: 'form-error', role: 'alert', hidden: true });
  const count = h('p', { class: 'hint', 'aria-live': 'polite' });
  signal.addEventListener('abort', () => added.forEach((a) => URL.revokeObjectURL(a.url)));

  const kept = () => (post ? post.images.filter((i) => !removed.has(i.id)).length : 0);

  function drawPreviews() {
    const existing = (post?.images || []).map((image, i) => {
      const gone = removed.has(image.id);
      return h('li', { class: gone ? 'preview removed' : 'preview' },
        h('img', { src: image.url, alt: `Image ${i + 1} of the post${gone ? ' (to be removed)' : ''}` }),
        h('button', {
          type: 'button', class: 'ghost', 'aria-pressed': String(gone),
          onClick: () => { gone ? removed.delete(image.id) : removed.add(image.id); drawPreviews(); },
        }, gone ? 'Keep' : 'Remove'));
    });
    const fresh = added.map((item, i) => h('li', { class: 'preview new' },
      h('img', { src: item.url, alt: `New image: ${item.file.name}` }),
      h('button', { type: 'button', class: 'ghost', 'aria-label': `Remove ${item.file.name}`, onClick: () => {
        URL.revokeObjectURL(item.url);
        added.splice(i, 1);
        drawPreviews();
      } }, 'Remove')));
    previews.replaceChildren(...existing, ...fresh);
    count.textContent = `${kept() + added.length} of at most ${MAX_IMAGES} images. PNG, JPEG, GIF or WebP, up to 10 MB each.`;
  }

  // Files are checked here, before anything is sent: type (by their first bytes), size, count.
  const picker = field('Add images', { name: 'picker', type: 'file', multiple: true, accept: IMAGE_TYPES.join(',') });
  picker.querySelector('input').addEventListener('change', async (event) => {
    const input = event.target;
    const messages = [];
    for (const file of [...input.files]) {
      if (kept() + added.length >= MAX_IMAGES) messages.push(`${file.name}: a post has at most ${MAX_IMAGES} images.`);
      else if (file.size > MAX_IMAGE_BYTES) messages.push(`${file.name} is ${formatBytes(file.size)}; an image may be at most 10 MB.`);
      else if (!IMAGE_TYPES.includes(file.type) || !(await sniff(file))) messages.push(`${file.name} is not a PNG, JPEG, GIF or WebP image.`);
      else added.push({ file, url: URL.createObjectURL(file) });
    }
    input.value = ''; // the same file may be picked again after removing it
    problems.replaceChildren(...messages.map((m) => h('li', {}, m)));
    problems.hidden = messages.length === 0;
    drawPreviews();
  });
  drawPreviews();

  const form = bindForm(
    h('form', { class: 'card form' },
      field('Title', { name: 'title', required: true, maxlength: '200', value: post?.title ?? '' }),
      field('Text', { tag: 'textarea', name: 'content', rows: 6, maxlength: '20000', value: post?.content ?? '' }),
      picker, count, problems, previews,
      h('div', { class: 'actions' },
        h('a', { class: 'button ghost', href: '#/board' }, 'Cancel'),
        h('button', { type: 'submit', class: 'primary' }, post ? 'Save' : 'Post'))),
    async ({ title, content }, formEl) => {
      if (!title.trim()) {
        formError(formEl, 'The title cannot be empty.');
        return;
      }
      const body = new FormData();
      body.append('title', title);
      body.append('content', content);
      for (const { file } of added) body.append('images', file, file.name);
      for (const id of removed) body.append('removeImageIds', id);
      if (post) await api.call('PATCH', postPath(post.id), { form: body });
      else await api.call('POST', '/feeds', { form: body });
      flashNext(post ? 'Your post is saved.' : 'Your post is on the board.');
      navigate('/board');
    });
  return page(post ? 'Edit post' : 'New post', form);
}
