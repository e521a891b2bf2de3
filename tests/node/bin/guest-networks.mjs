// Prints one VM's VM_guest_metrics.networks as the npm xen-api client sees it:
// through its object cache, fed by events, which is what Xen Orchestra shows.
// Used by tests/python/test_qemu_net.py. Waits until the networks name every
// address asked for, or fails after the timeout.
//
//   node bin/guest-networks.mjs URL USER PASSWORD VM_UUID TIMEOUT_MS KEY=VALUE...

import { createClient } from 'xen-api'
import { setTimeout as sleep } from 'node:timers/promises'

const [url, user, password, vmUuid, timeoutMs, ...want] = process.argv.slice(2)
const expected = Object.fromEntries(want.map(kv => kv.split('=', 2)))
const xapi = createClient({ url, auth: { user, password }, allowUnauthorized: true, readOnly: true })

function networks() {
  const vm = Object.values(xapi.objects.all).find(o => o.$type === 'VM' && o.uuid === vmUuid)
  const gm = vm && xapi.getObjectByRef(vm.guest_metrics, undefined)
  return gm ? gm.networks : undefined
}

let code = 1
try {
  await xapi.connect()
  await xapi.objectsFetched
  const deadline = Date.now() + Number(timeoutMs)
  let seen
  for (;;) {
    seen = networks()
    if (seen && Object.entries(expected).every(([k, v]) => seen[k] === v)) {
      code = 0
      break
    }
    if (Date.now() > deadline) break
    await sleep(200)
  }
  console.log(JSON.stringify(seen ?? null))
} catch (e) {
  console.error(String(e?.stack ?? e))
} finally {
  await xapi.disconnect().catch(() => {})
}
process.exit(code)
