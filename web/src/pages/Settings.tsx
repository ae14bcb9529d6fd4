import { useEffect, useState } from 'preact/hooks';
import { api } from '../api/http';
import { forget } from '../api/session';
import { ErrorBox, useAsync } from '../components/common';
import { resendOutcome } from '../lib/recovery';
import { navigate } from '../router';

interface Profile {
  id: string;
  username: string;
  email: string;
  display_name: string | null;
  bio: string;
  avatar_url: string | null;
  created_at: string;
  email_verified?: boolean;
}

/** Shown while the address is unverified: the mailed link, or another one. */
function VerifyNotice({ email, onVerified }: { email: string; onVerified: () => void }) {
  const [busy, setBusy] = useState(false);
  const [sent, setSent] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const resend = async () => {
    setBusy(true);
    setError(null);
    setSent(false);
    let failure: unknown = null;
    try {
      await api('/user/email/verification', { method: 'POST', auth: true });
    } catch (err) {
      failure = err;
    } finally {
      setBusy(false);
    }
    const outcome = resendOutcome(failure);
    if (outcome.kind === 'sent') setSent(true);
    else if (outcome.kind === 'verified') onVerified(); // verified meanwhile (another tab, the link)
    else setError(outcome.error);
  };
  return (
    <div class="notice" id="settings-verify" role="region" aria-labelledby="settings-verify-title">
      <p>
        <strong id="settings-verify-title">Your email address is not verified yet.</strong> Follow the link we mailed to {email}; until then
        you may not be able to upload videos.
      </p>
      <button type="button" onClick={resend} disabled={busy}>
        {busy ? 'Sending…' : 'Resend verification email'}
      </button>
      {sent && (
        <p role="status" id="settings-verify-sent">
          A new link is on its way to {email}. It works once, and only for a while.
        </p>
      )}
      <ErrorBox error={error} />
    </div>
  );
}

export default function Settings() {
  const profile = useAsync((signal) => api<Profile>('/user/profile', { auth: true, signal }), []);
  const [form, setForm] = useState({ display_name: '', bio: '', avatar_url: '', email: '', password: '', current_password: '' });
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const [busy, setBusy] = useState(false);
  const [alreadyVerified, setAlreadyVerified] = useState(false);
  useEffect(() => {
    const p = profile.data;
    if (p) setForm({ display_name: p.display_name ?? '', bio: p.bio, avatar_url: p.avatar_url ?? '', email: p.email, password: '', current_password: '' });
  }, [profile.data]);
  if (profile.error) return <ErrorBox error={profile.error} retry={profile.reload} />;
  const p = profile.data;
  if (!p) return <p class="loading">Loading…</p>;
  const set = (k: keyof typeof form) => (e: { currentTarget: HTMLInputElement | HTMLTextAreaElement }) => {
    setSaved(false);
    setForm({ ...form, [k]: e.currentTarget.value });
  };
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const patch: Record<string, string> = {};
    if (form.display_name !== (p.display_name ?? '')) patch.display_name = form.display_name;
    if (form.bio !== p.bio) patch.bio = form.bio;
    if (form.avatar_url !== (p.avatar_url ?? '')) patch.avatar_url = form.avatar_url;
    if (form.email !== p.email) patch.email = form.email;
    if (form.password) patch.password = form.password;
    if (patch.email || patch.password) patch.current_password = form.current_password;
    try {
      const updated = await api<Profile>('/user/profile', { method: 'PATCH', auth: true, body: patch });
      profile.setData(updated);
      setSaved(true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    if (!confirm('Delete your account, your videos, likes and comments? This cannot be undone.')) return;
    try {
      await api('/user/profile', { method: 'DELETE', auth: true });
      forget();
      navigate('/');
    } catch (err) {
      setError(err);
    }
  };
  const sensitive = form.email !== p.email || form.password !== '';
  return (
    <section class="narrow">
      <h1>Profile settings</h1>
      <p class="muted">Signed in as @{p.username}.</p>
      {p.email_verified === false && (
        <VerifyNotice
          key={p.email}
          email={p.email}
          onVerified={() => {
            profile.setData({ ...p, email_verified: true });
            setAlreadyVerified(true);
          }}
        />
      )}
      {p.email_verified && alreadyVerified && (
        <p class="notice" role="status" id="settings-verified">
          Your email address is already verified.
        </p>
      )}
      <form onSubmit={submit}>
        <div class="field">
          <label for="settings-display">Display name</label>
          <input id="settings-display" value={form.display_name} onInput={set('display_name')} />
        </div>
        <div class="field">
          <label for="settings-bio">Bio</label>
          <textarea id="settings-bio" rows={3} value={form.bio} onInput={set('bio')} />
        </div>
        <div class="field">
          <label for="settings-avatar">Avatar URL</label>
          <input id="settings-avatar" type="url" value={form.avatar_url} onInput={set('avatar_url')} />
        </div>
        <div class="field">
          <label for="settings-email">Email</label>
          <input id="settings-email" type="email" autocomplete="email" value={form.email} onInput={set('email')} />
        </div>
        <div class="field">
          <label for="settings-password">New password (leave empty to keep)</label>
          <input id="settings-password" type="password" autocomplete="new-password" minLength={8} value={form.password} onInput={set('password')} />
        </div>
        {sensitive && (
          <div class="field">
            <label for="settings-current">Current password (needed to change email or password)</label>
            <input id="settings-current" type="password" autocomplete="current-password" required value={form.current_password} onInput={set('current_password')} />
          </div>
        )}
        <ErrorBox error={error} />
        {saved && <p role="status">Saved.</p>}
        <button type="submit" disabled={busy}>
          Save
        </button>
      </form>
      <h2>Danger zone</h2>
      <button type="button" class="danger" onClick={remove}>
        Delete my account
      </button>
    </section>
  );
}
