// Loopback helpers shared by the node test suites (node built-ins only).
import { connect, createServer } from 'node:net'

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer()
    s.on('error', fail)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => ok(port))
    })
  })
}

/** Does something accept connections on 127.0.0.1:`port` (200 ms at most)? */
export const canConnect = (port) =>
  new Promise((ok) => {
    const c = connect({ host: '127.0.0.1', port })
    const done = (v) => (c.destroy(), ok(v))
    c.setTimeout(200, () => done(false))
    c.once('connect', () => done(true))
    c.once('error', () => done(false))
  })
