// Directory users through the npm xen-api client, as Xen Orchestra connects
// for its read-only and operator users: Debian's real slapd, external
// authentication enabled by root, one subject per role. Each user connects
// (the full object fetch and the event loop), may do what its role allows,
// and gets RBAC_PERMISSION_DENIED with xapi's parameters for the rest.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'

import { TRANSPORTS, startServer, makeClient, closeClient, objectsOfType, withTimeout } from './helpers.mjs'
import { haveSlapd, startSlapd } from '../../shared/slapd.mjs'

const USERS = { oscar: 'oscar-pw', rita: 'rita-pw' }

if (!haveSlapd() && !process.env.CI) {
  describe('directory users (npm xen-api)', () => it('needs slapd (apt-get install slapd)', { skip: true }, () => {}))
} else {
  describe('directory users (npm xen-api)', { concurrency: 1, timeout: 120e3 }, () => {
    let ldap, server, root, vm

    before(async () => {
      if (!haveSlapd()) throw new Error('needs slapd and slapadd (apt-get install slapd)')
      ldap = await startSlapd(USERS)
      server = await startServer()
      root = makeClient(server.url, 'json-rpc')
      await withTimeout(root.connect(), 20e3, 'root connect')
      await withTimeout(root.objectsFetched, 15e3, 'root objectsFetched')
      const pool = (await root.call('pool.get_all'))[0]
      await root.call('pool.enable_external_auth', pool, ldap.config, 'example.org', 'LDAP')
      for (const [user, role] of [['oscar', 'vm-operator'], ['rita', 'read-only']]) {
        const sid = await root.call('auth.get_subject_identifier', user)
        const s = await root.call('subject.create', { subject_identifier: sid, other_config: { 'subject-name': user } })
        for (const r of await root.call('subject.get_roles', s)) await root.call('subject.remove_from_roles', s, r)
        const [ref] = await root.call('role.get_by_name_label', role)
        await root.call('subject.add_to_roles', s, ref)
      }
      const tpl = Object.entries(await root.call('VM.get_all_records')).find(([, v]) => v.is_a_template)[0]
      vm = await root.call('VM.clone', tpl, 'rbac-vm')
      await root.call('VM.set_is_a_template', vm, false)
    })

    after(async () => {
      if (root) await closeClient(root)
      await server?.stop()
      await ldap?.stop()
    })

    const asUser = async (user, transport) => {
      const x = makeClient(server.url, transport, { auth: { user, password: USERS[user] } })
      await withTimeout(x.connect(), 20e3, `${user} connect`)
      // The initial fetch of every object and the event loop, as XO waits for them.
      await withTimeout(x.objectsFetched, 15e3, `${user} objectsFetched`)
      assert.equal(x.watchEventsError, undefined)
      return x
    }

    const denied = async (promise, permission) => {
      const e = await promise.then(() => null, (err) => err)
      assert.ok(e, `${permission} was allowed`)
      assert.equal(e.code, 'RBAC_PERMISSION_DENIED')
      assert.equal(e.params[0], permission)
      assert.match(e.params[1], /No permission in user session/)
    }

    for (const transport of TRANSPORTS) {
      it(`a vm-operator connects, starts and stops a VM, and may not snapshot it (${transport})`, async () => {
        const x = await asUser('oscar', transport)
        try {
          assert.ok(objectsOfType(x, 'VM').some((v) => v.$ref === vm), 'the VM is among the fetched objects')
          await x.call('VM.start', vm, false, false)
          assert.equal(await x.call('VM.get_power_state', vm), 'Running')
          await denied(x.call('VM.snapshot', vm, 'no'), 'vm.snapshot')
          await denied(x.call('VM.destroy', vm), 'vm.destroy')
          // An allowed map key, and one kept for pool admins.
          await x.call('VM.add_to_other_config', vm, 'folder', '/ops')
          await denied(x.call('VM.add_to_other_config', vm, 'pci', '0/0000:00:01.0'), 'vm.add_to_other_config/key:pci')
          await x.call('VM.hard_shutdown', vm)
          assert.equal(await x.call('VM.get_power_state', vm), 'Halted')
          await x.call('VM.remove_from_other_config', vm, 'folder')
        } finally {
          await closeClient(x)
        }
      })

      it(`a read-only user connects and reads, and may change nothing (${transport})`, async () => {
        const x = await asUser('rita', transport)
        try {
          assert.ok(objectsOfType(x, 'host').length === 1)
          assert.equal(await x.call('VM.get_name_label', vm), 'rbac-vm')
          await denied(x.call('VM.start', vm, false, false), 'vm.start')
          await denied(x.call('VM.set_name_label', vm, 'renamed'), 'vm.set_name_label')
          // An Async call's refusal lands in its task, as in xapi.
          const task = await x.call('Async.VM.start', vm, false, false)
          const rec = await x.call('task.get_record', task)
          assert.equal(rec.status, 'failure')
          assert.equal(rec.error_info[0], 'RBAC_PERMISSION_DENIED')
          assert.equal(await x.call('VM.get_power_state', vm), 'Halted')
        } finally {
          await closeClient(x)
        }
      })
    }
  })
}
