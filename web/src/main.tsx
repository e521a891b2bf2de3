import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { ApiError, asApiError, db, eventError, login, logout, session, startEvents } from './api'
import { ErrorBox, useDb } from './ui'
import { VmList, NewVm } from './vms'
import { VmPage } from './vm'
import { Overview, Storage, Networks, Tasks, Messages, ImportPage } from './other'
import './style.css'

/** `#/vm/<uuid>` and friends: hash routes never collide with the server's paths. */
function useRoute(): string[] {
  const [hash, setHash] = useState(location.hash)
  useEffect(() => {
    const f = () => setHash(location.hash)
    addEventListener('hashchange', f)
    return () => removeEventListener('hashchange', f)
  }, [])
  return hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent)
}

function Login({ onIn }: { onIn: () => void }) {
  const [user, setUser] = useState('root')
  const [password, setPassword] = useState('')
  const [error, setError] = useState<ApiError | null>(null)
  const [busy, setBusy] = useState(false)
  const submit = async (e: Event) => {
    e.preventDefault()
    setBusy(true)
    setError(null)
    try {
      await login(user, password)
      onIn()
    } catch (err) {
      setError(asApiError(err))
    } finally {
      setBusy(false)
    }
  }
  return (
    <main class="login">
      <form onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">xapi-rs</h1>
        <label>
          User
          <input name="username" autoComplete="username" value={user} onInput={(e) => setUser(e.currentTarget.value)} required />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            onInput={(e) => setPassword(e.currentTarget.value)}
            autoFocus
          />
        </label>
        <button type="submit" disabled={busy}>
          {busy ? 'Logging in…' : 'Log in'}
        </button>
        <ErrorBox error={error} />
      </form>
    </main>
  )
}

const NAV: [string, string][] = [
  ['', 'VMs'],
  ['new', 'New VM'],
  ['import', 'Import'],
  ['overview', 'Host'],
  ['storage', 'Storage'],
  ['networks', 'Networks'],
  ['tasks', 'Tasks'],
  ['messages', 'Messages'],
]

function Shell({ onOut }: { onOut: () => void }) {
  useDb()
  const route = useRoute()
  const page = route[0] ?? ''
  const pool = [...db.table('pool').values()][0]
  let body
  switch (page) {
    case 'vm':
      body = <VmPage uuid={route[1] ?? ''} />
      break
    case 'new':
      body = <NewVm />
      break
    case 'import':
      body = <ImportPage />
      break
    case 'overview':
      body = <Overview />
      break
    case 'storage':
      body = <Storage />
      break
    case 'networks':
      body = <Networks />
      break
    case 'tasks':
      body = <Tasks />
      break
    case 'messages':
      body = <Messages />
      break
    default:
      body = <VmList />
  }
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header>
        <span class="brand">xapi-rs{pool?.name_label ? ` · ${pool.name_label}` : ''}</span>
        <nav aria-label="Main">
          {NAV.map(([r, label]) => (
            <a key={r} href={`#/${r}`} aria-current={page === r || (r === '' && page === 'vm') ? 'page' : undefined}>
              {label}
            </a>
          ))}
        </nav>
        <button type="button" class="logout" onClick={() => logout().then(onOut)}>
          Log out
        </button>
      </header>
      {eventError && <ErrorBox error={eventError} />}
      <main id="main" tabIndex={-1}>
        {db.loaded ? body : <p role="status">Loading…</p>}
      </main>
    </div>
  )
}

function App() {
  const [inside, setInside] = useState(session != null)
  useEffect(() => {
    if (inside) startEvents(() => setInside(false))
  }, [inside])
  return inside ? <Shell onOut={() => setInside(false)} /> : <Login onIn={() => setInside(true)} />
}

render(<App />, document.getElementById('app') as HTMLElement)
