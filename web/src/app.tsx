import { useEffect, useState } from 'preact/hooks';
import { liveStatus, onLiveStatus } from './api/graphql';
import { logout, onSessionEnded } from './api/session';
import { ErrorBox, lazyPage, useSession } from './components/common';
import { useSuggestions } from './components/suggestions';
import type { TrendingWindow } from './gql/graphql';
import { linkToken } from './lib/recovery';
import Home from './pages/Home';
import { SignIn, SignUp } from './pages/Auth';
import Search from './pages/Search';
import Trending from './pages/Trending';
import { Link, match, navigate, signInThenBack, useLocation, type Location } from './router';

// Pages with heavy dependencies (hls.js, tus-js-client) or few visitors load on demand.
const Watch = lazyPage<{ id: string }>(() => import('./pages/Watch'));
const Upload = lazyPage<object>(() => import('./pages/Upload'));
const Channel = lazyPage<{ id: string }>(() => import('./pages/Channel'));
const Settings = lazyPage<object>(() => import('./pages/Settings'));
const Dashboard = lazyPage<object>(() => import('./pages/Dashboard'));
// The pages mailed links lead to (one module, loaded on demand).
const ForgotPassword = lazyPage<{ email?: string }>(() => import('./pages/Recovery').then((m) => ({ default: m.ForgotPassword })));
const ResetPassword = lazyPage<{ token: string | null }>(() => import('./pages/Recovery').then((m) => ({ default: m.ResetPassword })));
const VerifyEmail = lazyPage<{ token: string | null }>(() => import('./pages/Recovery').then((m) => ({ default: m.VerifyEmail })));

function RequireSession({ children }: { children: preact.ComponentChildren }) {
  const session = useSession();
  useEffect(() => {
    if (!session) signInThenBack();
  }, [session]);
  return session ? <>{children}</> : null;
}

function route(loc: Location) {
  const p = loc.path;
  let m: Record<string, string> | null;
  if (p === '/') return <Home tab="latest" />;
  if (p === '/subscriptions')
    return (
      <RequireSession>
        <Home tab="subscriptions" />
      </RequireSession>
    );
  if (p === '/recommended')
    return (
      <RequireSession>
        <Home tab="recommended" />
      </RequireSession>
    );
  if (p === '/trending') {
    const w = (loc.query.get('window') ?? 'DAY').toUpperCase();
    return <Trending window={(['HOUR', 'DAY', 'WEEK'].includes(w) ? w : 'DAY') as TrendingWindow} />;
  }
  if (p === '/search') return <Search key={loc.query.toString()} loc={loc} />;
  if (p === '/signin') return <SignIn loc={loc} />;
  if (p === '/signup') return <SignUp loc={loc} />;
  if (p === '/forgot-password') return <ForgotPassword email={loc.query.get('email') ?? ''} />;
  if (p === '/reset-password') return <ResetPassword key={linkToken(loc.query)} token={linkToken(loc.query)} />;
  if (p === '/verify-email') return <VerifyEmail key={linkToken(loc.query)} token={linkToken(loc.query)} />;
  if ((m = match('/watch/:id', p))) return <Watch key={m.id} id={m.id} />;
  if ((m = match('/channel/:id', p))) return <Channel key={m.id} id={m.id} />;
  if (p === '/upload')
    return (
      <RequireSession>
        <Upload />
      </RequireSession>
    );
  if (p === '/settings')
    return (
      <RequireSession>
        <Settings />
      </RequireSession>
    );
  if (p === '/dashboard')
    return (
      <RequireSession>
        <Dashboard />
      </RequireSession>
    );
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        Nothing is here. <Link href="/">Go home</Link>
      </p>
    </section>
  );
}

function Header() {
  const session = useSession();
  const [q, setQ] = useState('');
  const suggestions = useSuggestions(q);
  const [error, setError] = useState<unknown>(null);
  const [live, setLive] = useState(liveStatus);
  useEffect(() => onLiveStatus(setLive), []);
  const signOut = async () => {
    setError(null);
    try {
      await logout();
      navigate('/');
    } catch (e) {
      setError(e);
    }
  };
  return (
    <header class="top">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <Link href="/" class="brand">
        Kino
      </Link>
      <form
        class="top-search"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          if (q.trim()) navigate(`/search?q=${encodeURIComponent(q.trim())}`);
        }}
      >
        <label for="top-q" class="visually-hidden">
          Search videos
        </label>
        <input
          id="top-q"
          type="search"
          placeholder="Search"
          autocomplete="off"
          list="top-q-suggestions"
          value={q}
          onInput={(e) => setQ(e.currentTarget.value)}
        />
        <datalist id="top-q-suggestions">
          {suggestions.map((s) => (
            <option key={`${s.kind}:${s.text}`} value={s.text} label={s.kind === 'CHANNEL' ? 'Channel' : s.kind === 'TAG' ? 'Tag' : undefined} />
          ))}
        </datalist>
        <button type="submit">Search</button>
      </form>
      <nav class="top-nav" aria-label="Main">
        <Link href="/trending">Trending</Link>
        {session ? (
          <>
            <Link href="/upload">Upload</Link>
            <Link href="/dashboard">Dashboard</Link>
            <Link href={`/channel/${session.userId}`}>My channel</Link>
            <Link href="/settings" title="Profile settings">
              @{session.username}
            </Link>
            <button type="button" class="link" id="sign-out" onClick={signOut}>
              Sign out
            </button>
          </>
        ) : (
          <>
            <Link href="/signin">Sign in</Link>
            <Link href="/signup">Sign up</Link>
          </>
        )}
      </nav>
      {live === 'offline' && (
        <p class="offline" role="status">
          You are offline; live updates resume when you are back.
        </p>
      )}
      <ErrorBox error={error} />
    </header>
  );
}

export function App() {
  const loc = useLocation();
  useEffect(() => {
    // A request found the session dead: sign in, then come back here.
    onSessionEnded(signInThenBack);
  }, []);
  return (
    <>
      <Header />
      <main id="main" tabIndex={-1}>
        {route(loc)}
      </main>
    </>
  );
}
