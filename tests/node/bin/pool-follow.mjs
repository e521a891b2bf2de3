// Connects the npm xen-api client to a pool member and reports where it ended
// up: xen-api follows a HOST_IS_SLAVE answer to the address it names (keeping
// the scheme and port), as Xen Orchestra relies on. Used by
// tests/python/test_pool.py, run inside the pool lab's hub namespace (the
// member's answer names the master's lab address, reachable only there).
//
//   node bin/pool-follow.mjs URL USER PASSWORD TIMEOUT_MS
//
// Prints one JSON object: { hostname, hosts, master_address, pool_uuid }
// (hostname: the host the client is connected to at the end). Exits 1 on
// failure or timeout, the error on stderr.

import { createClient } from 'xen-api'

const [url, user, password, timeoutMs] = process.argv.slice(2)
const xapi = createClient({ url, auth: { user, password }, allowUnauthorized: true, readOnly: true })

const timer = setTimeout(() => {
  console.error(`timed out after ${timeoutMs} ms (status ${xapi.status})`)
  process.exit(1)
}, Number(timeoutMs))

let code = 1
try {
  await xapi.connect()
  const hosts = await xapi.call('host.get_all_records')
  const pools = await xapi.call('pool.get_all_records')
  const pool = Object.values(pools)[0]
  const master = hosts[pool.master]
  process.stdout.write(
    JSON.stringify({
      hostname: xapi._url.hostname,
      hosts: Object.keys(hosts).length,
      master_address: master && master.address,
      pool_uuid: pool.uuid,
    }) + '\n'
  )
  code = 0
} catch (error) {
  console.error(error && error.stack ? error.stack : String(error))
} finally {
  clearTimeout(timer)
  try {
    await xapi.disconnect()
  } catch {}
}
process.exit(code)
