import { useState } from 'preact/hooks';
import { gql } from '../api/graphql';
import { api } from '../api/http';
import { DashboardQuery, DeleteVideoMutation, UpdateVideoMutation } from '../api/operations';
import { ErrorBox, useAsync } from '../components/common';
import type { DashboardQuery as DashboardData, Visibility } from '../gql/graphql';
import { compactNumber, formatDuration, timeAgo } from '../lib/format';
import { Link } from '../router';

type Row = DashboardData['dashboard']['videos']['nodes'][number];

export default function Dashboard() {
  const d = useAsync((signal) => gql(DashboardQuery, { first: 50 }, signal), []);
  if (d.error) return <ErrorBox error={d.error} retry={d.reload} />;
  if (!d.data) return <p class="loading">Loading…</p>;
  const { totals, subscriberCount, videos } = d.data.dashboard;
  const hours = (totals.watchTimeSeconds / 3600).toFixed(1);
  return (
    <section>
      <h1>Creator dashboard</h1>
      <dl class="totals">
        <div><dt>Subscribers</dt><dd>{compactNumber(subscriberCount)}</dd></div>
        <div><dt>Videos</dt><dd>{totals.videos}</dd></div>
        <div><dt>Views</dt><dd>{compactNumber(totals.views)}</dd></div>
        <div><dt>Likes</dt><dd>{compactNumber(totals.likes)}</dd></div>
        <div><dt>Comments</dt><dd>{compactNumber(totals.comments)}</dd></div>
        <div><dt>Watch time</dt><dd>{hours} h</dd></div>
      </dl>
      <p>
        <Link href="/upload">Upload a video</Link>
      </p>
      <div class="table-wrap">
        <table class="dash">
          <thead>
            <tr>
              <th scope="col">Video</th>
              <th scope="col">Status</th>
              <th scope="col">Views</th>
              <th scope="col">Likes</th>
              <th scope="col">Comments</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {videos.nodes.map((v) => (
              <DashRow key={v.id} v={v} onChange={d.reload} />
            ))}
          </tbody>
        </table>
      </div>
      {videos.nodes.length === 0 && <p class="notice">No videos yet.</p>}
    </section>
  );
}

function DashRow({ v, onChange }: { v: Row; onChange: () => void }) {
  const [editing, setEditing] = useState(false);
  const [form, setForm] = useState({ title: v.title, description: v.description, visibility: v.visibility as Visibility });
  const [caption, setCaption] = useState({ language: 'en', label: 'English', file: null as File | null });
  const [error, setError] = useState<unknown>(null);
  const [note, setNote] = useState('');
  const save = async (e: Event) => {
    e.preventDefault();
    setError(null);
    try {
      await gql(UpdateVideoMutation, { id: v.id, input: form });
      setEditing(false);
      onChange();
    } catch (err) {
      setError(err);
    }
  };
  const remove = async () => {
    if (!confirm(`Delete “${v.title}”? This cannot be undone.`)) return;
    try {
      await gql(DeleteVideoMutation, { id: v.id });
      onChange();
    } catch (err) {
      setError(err);
    }
  };
  const uploadCaption = async (e: Event) => {
    e.preventDefault();
    if (!caption.file) return;
    setError(null);
    setNote('');
    try {
      await api(`/video/${v.id}/captions/${encodeURIComponent(caption.language)}?label=${encodeURIComponent(caption.label)}`, {
        method: 'PUT',
        auth: true,
        raw: caption.file,
        headers: { 'Content-Type': caption.file.name.endsWith('.srt') ? 'application/x-subrip' : 'text/vtt' },
      });
      setNote('Captions saved.');
    } catch (err) {
      setError(err);
    }
  };
  const p = `v-${v.id}`;
  return (
    <>
      <tr data-video-id={v.id}>
        <td>
          <Link href={`/watch/${v.id}`}>{v.title}</Link>
          <div class="muted small">
            {formatDuration(v.durationSeconds)} · {v.visibility.toLowerCase()} · {timeAgo(v.createdAt)}
          </div>
        </td>
        <td>
          {v.status.toLowerCase()}
          {v.failureReason && <div class="error small">{v.failureReason}</div>}
        </td>
        <td>{compactNumber(v.viewCount)}</td>
        <td>{compactNumber(v.likeCount)}</td>
        <td>{compactNumber(v.commentCount)}</td>
        <td>
          <button type="button" class="link" aria-expanded={editing} onClick={() => setEditing(!editing)}>
            Edit
          </button>{' '}
          <button type="button" class="link danger" onClick={remove}>
            Delete
          </button>
        </td>
      </tr>
      {(editing || error || note) && (
        <tr>
          <td colSpan={6}>
            <ErrorBox error={error} />
            {note && <p role="status">{note}</p>}
            {editing && (
              <div class="edit-forms">
                <form onSubmit={save}>
                  <div class="field">
                    <label for={`${p}-title`}>Title</label>
                    <input id={`${p}-title`} required maxLength={200} value={form.title} onInput={(e) => setForm({ ...form, title: e.currentTarget.value })} />
                  </div>
                  <div class="field">
                    <label for={`${p}-desc`}>Description</label>
                    <textarea id={`${p}-desc`} rows={2} value={form.description} onInput={(e) => setForm({ ...form, description: e.currentTarget.value })} />
                  </div>
                  <div class="field">
                    <label for={`${p}-vis`}>Visibility</label>
                    <select id={`${p}-vis`} value={form.visibility} onChange={(e) => setForm({ ...form, visibility: e.currentTarget.value as Visibility })}>
                      <option value="PUBLIC">Public</option>
                      <option value="UNLISTED">Unlisted</option>
                      <option value="PRIVATE">Private</option>
                    </select>
                  </div>
                  <button type="submit">Save</button>
                </form>
                {v.status === 'READY' && (
                  <form onSubmit={uploadCaption}>
                    <div class="field">
                      <label for={`${p}-cap-file`}>Captions file (WebVTT or SRT)</label>
                      <input id={`${p}-cap-file`} type="file" accept=".vtt,.srt,text/vtt" required onChange={(e) => setCaption({ ...caption, file: e.currentTarget.files?.[0] ?? null })} />
                    </div>
                    <div class="field">
                      <label for={`${p}-cap-lang`}>Language (BCP 47, e.g. en, pt-BR)</label>
                      <input id={`${p}-cap-lang`} required value={caption.language} onInput={(e) => setCaption({ ...caption, language: e.currentTarget.value })} />
                    </div>
                    <div class="field">
                      <label for={`${p}-cap-label`}>Label</label>
                      <input id={`${p}-cap-label`} required value={caption.label} onInput={(e) => setCaption({ ...caption, label: e.currentTarget.value })} />
                    </div>
                    <button type="submit">Upload captions</button>
                  </form>
                )}
              </div>
            )}
          </td>
        </tr>
      )}
    </>
  );
}
