// The pages mailed links lead to, and the way to ask for one: forgot password (asks for a
// reset link), reset password (`/reset-password?token=…`) and verify email
// (`/verify-email?token=…`). Few visitors, so they load on demand (app.tsx).
import { useEffect, useState } from 'preact/hooks';
import { api } from '../api/http';
import { forget, session } from '../api/session';
import { ErrorBox, useSession } from '../components/common';
import { isInvalidToken, isPasswordRejected, newPasswordProblem, onceFor, PASSWORD_MAX, PASSWORD_MIN } from '../lib/recovery';
import { Link, navigate } from '../router';

function InvalidLink({ id, what }: { id: string; what: 'reset' | 'verify' }) {
  const signedIn = useSession();
  return (
    <div class="error" role="alert" id={id}>
      This link is invalid, already used or expired (a link works once, and only for a while).{' '}
      {what === 'reset' ? (
        <Link href="/forgot-password">Ask for a new reset link</Link>
      ) : signedIn ? (
        <>
          Send a new one from <Link href="/settings">Settings</Link>.
        </>
      ) : (
        <>
          <Link href="/signin?next=%2Fsettings">Sign in</Link> to send a new one from Settings.
        </>
      )}
    </div>
  );
}

export function ForgotPassword({ email: initial = '' }: { email?: string }) {
  const [email, setEmail] = useState(initial);
  const [sent, setSent] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    setSent(null);
    try {
      const r = await api<{ detail?: string }>('/auth/password/forgot', { method: 'POST', body: { email: email.trim() } });
      // The same answer whether or not an account has the address.
      const detail = r?.detail?.trim() || 'if an account has this email address, a link to reset its password is on its way';
      setSent(detail[0].toUpperCase() + detail.slice(1).replace(/\.?$/, '.'));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="narrow">
      <h1>Forgot your password?</h1>
      <p class="muted">Enter the email address of your account; we will mail you a link to choose a new password.</p>
      <form onSubmit={submit}>
        <div class="field">
          <label for="forgot-email">Email</label>
          <input id="forgot-email" name="email" type="email" autocomplete="email" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </div>
        <ErrorBox error={error} />
        {sent && (
          <p class="notice" role="status" id="forgot-sent">
            {sent} The link works once, and only for a while. Nothing arrived? Check your spam folder, or send it again.
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Sending…' : sent ? 'Send again' : 'Send reset link'}
        </button>
      </form>
      <p>
        Remembered it? <Link href="/signin">Sign in</Link>
      </p>
    </section>
  );
}

export function ResetPassword({ token }: { token: string | null }) {
  const [form, setForm] = useState({ password: '', confirm: '' });
  const [problem, setProblem] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const set = (k: keyof typeof form) => (e: { currentTarget: HTMLInputElement }) => {
    setProblem(null);
    setForm({ ...form, [k]: e.currentTarget.value });
  };
  if (!token)
    return (
      <section class="narrow">
        <h1>Choose a new password</h1>
        <InvalidLink id="reset-invalid" what="reset" />
      </section>
    );
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    const p = newPasswordProblem(form.password, form.confirm);
    setProblem(p);
    if (p) return;
    setBusy(true);
    try {
      await api('/auth/password/reset', { method: 'POST', body: { token, password: form.password } });
      // Every session of the account has ended, this browser's included.
      if (session()) forget();
      navigate('/signin?reset=1', { replace: true });
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="narrow">
      <h1>Choose a new password</h1>
      <form onSubmit={submit} noValidate>
        <div class="field">
          <label for="reset-password">New password</label>
          <input id="reset-password" name="password" type="password" autocomplete="new-password" required minLength={PASSWORD_MIN} maxLength={PASSWORD_MAX} aria-describedby="reset-password-hint" value={form.password} onInput={set('password')} />
          <small id="reset-password-hint">
            {PASSWORD_MIN}–{PASSWORD_MAX} characters. Every device signed in to your account will be signed out.
          </small>
        </div>
        <div class="field">
          <label for="reset-confirm">Confirm new password</label>
          <input id="reset-confirm" name="confirm" type="password" autocomplete="new-password" required value={form.confirm} onInput={set('confirm')} />
        </div>
        {problem && (
          <div class="error" role="alert" id="reset-problem">
            {problem}
          </div>
        )}
        {isInvalidToken(error) ? (
          <InvalidLink id="reset-invalid" what="reset" />
        ) : isPasswordRejected(error) ? (
          <div id="reset-problem">
            <ErrorBox error={error} />
          </div>
        ) : (
          <ErrorBox error={error} />
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Saving…' : 'Set new password'}
        </button>
      </form>
    </section>
  );
}

// One POST per token for the page's lifetime: a token is single-use, and a second post
// (an effect run twice, the page mounted again) would turn a success into "invalid link".
const verifications = new Map<string, Promise<void>>();

export function VerifyEmail({ token }: { token: string | null }) {
  const signedIn = useSession();
  const [state, setState] = useState<{ status: 'working' | 'done' | 'failed'; error?: unknown }>({ status: token ? 'working' : 'failed' });
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    if (!token) return;
    let live = true;
    setState({ status: 'working' });
    onceFor(verifications, token, () => api<void>('/auth/email/verify', { method: 'POST', body: { token } }), isInvalidToken).then(
      () => live && setState({ status: 'done' }),
      (error) => live && setState({ status: 'failed', error }),
    );
    return () => {
      live = false;
    };
  }, [token, attempt]);
  return (
    <section class="narrow">
      <h1>Verify your email address</h1>
      {state.status === 'working' && <p class="loading">Verifying…</p>}
      {state.status === 'done' && (
        <>
          <p class="success" role="status" id="verify-done">
            Your email address is verified. Thank you!
          </p>
          <p>{signedIn ? <Link href="/upload">Upload a video</Link> : <Link href="/signin">Sign in</Link>} or <Link href="/">go home</Link>.</p>
        </>
      )}
      {state.status === 'failed' &&
        (!token || isInvalidToken(state.error) ? (
          <InvalidLink id="verify-invalid" what="verify" />
        ) : (
          <ErrorBox error={state.error} retry={() => setAttempt((n) => n + 1)} />
        ))}
    </section>
  );
}
