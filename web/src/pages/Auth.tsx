import { useState } from 'preact/hooks';
import { api } from '../api/http';
import { login } from '../api/session';
import { ErrorBox } from '../components/common';
import { Link, navigate, type Location } from '../router';

function nextOf(loc: Location): string {
  const next = loc.query.get('next') ?? '/';
  // Only paths of this app (no protocol-relative or absolute URLs).
  return next.startsWith('/') && !next.startsWith('//') ? next : '/';
}

export function SignIn({ loc }: { loc: Location }) {
  const [form, setForm] = useState({ login: loc.query.get('login') ?? '', password: '' });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await login(form.login.trim(), form.password);
      navigate(nextOf(loc), { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const next = loc.query.get('next');
  const reset = loc.query.get('reset') !== null;
  return (
    <section class="narrow">
      <h1>Sign in</h1>
      {reset && (
        <p class="notice" role="status" id="signin-reset-notice">
          Your password was changed, and every session of your account was signed out. Sign in with the new password.
        </p>
      )}
      {next && <p class="notice">Sign in to continue.</p>}
      <form onSubmit={submit} aria-describedby="signin-error">
        <div class="field">
          <label for="signin-login">Username or email</label>
          <input id="signin-login" name="login" autocomplete="username" required value={form.login} onInput={(e) => setForm({ ...form, login: e.currentTarget.value })} />
        </div>
        <div class="field">
          <label for="signin-password">Password</label>
          <input id="signin-password" name="password" type="password" autocomplete="current-password" required value={form.password} onInput={(e) => setForm({ ...form, password: e.currentTarget.value })} />
        </div>
        <div id="signin-error">
          <ErrorBox error={error} />
        </div>
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
      <p>
        <Link href={`/forgot-password${form.login.includes('@') ? `?email=${encodeURIComponent(form.login.trim())}` : ''}`}>Forgot your password?</Link>
      </p>
      <p>
        No account? <Link href={`/signup${next ? `?next=${encodeURIComponent(next)}` : ''}`}>Sign up</Link>
      </p>
    </section>
  );
}

export function SignUp({ loc }: { loc: Location }) {
  const [form, setForm] = useState({ username: '', email: '', password: '', display_name: '' });
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = (k: keyof typeof form) => (e: { currentTarget: HTMLInputElement }) => setForm({ ...form, [k]: e.currentTarget.value });
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const username = form.username.trim().toLowerCase();
      await api('/auth/register', {
        method: 'POST',
        body: { username, email: form.email.trim(), password: form.password, display_name: form.display_name.trim() || undefined },
      });
      await login(username, form.password);
      navigate(nextOf(loc), { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="narrow">
      <h1>Create an account</h1>
      <form onSubmit={submit}>
        <div class="field">
          <label for="signup-username">Username</label>
          <input id="signup-username" name="username" autocomplete="username" required minLength={3} maxLength={32} pattern="[A-Za-z0-9_]{3,32}" aria-describedby="signup-username-hint" value={form.username} onInput={set('username')} />
          <small id="signup-username-hint">3–32 letters, digits or _.</small>
        </div>
        <div class="field">
          <label for="signup-display">Display name (optional)</label>
          <input id="signup-display" name="display_name" autocomplete="name" value={form.display_name} onInput={set('display_name')} />
        </div>
        <div class="field">
          <label for="signup-email">Email</label>
          <input id="signup-email" name="email" type="email" autocomplete="email" required value={form.email} onInput={set('email')} />
        </div>
        <div class="field">
          <label for="signup-password">Password</label>
          <input id="signup-password" name="password" type="password" autocomplete="new-password" required minLength={8} maxLength={128} aria-describedby="signup-password-hint" value={form.password} onInput={set('password')} />
          <small id="signup-password-hint">8–128 characters.</small>
        </div>
        <ErrorBox error={error} />
        <button type="submit" disabled={busy}>
          {busy ? 'Creating…' : 'Sign up'}
        </button>
      </form>
      <p>
        Have an account? <Link href="/signin">Sign in</Link>
      </p>
    </section>
  );
}
