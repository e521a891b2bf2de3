// A directory user on the page: Debian's real slapd (its own config and data
// in a temporary directory, on a free loopback port), xapid with external
// authentication enabled, and a vm-operator who logs in through the page,
// starts a VM, and sees the RBAC refusal of a snapshot; a user who is no
// subject is refused at login.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { chromiumPath, launch, rpcClient, shot, startServer } from './helpers.mjs'
import { haveSlapd, startSlapd } from '../../shared/slapd.mjs'

const USERS = { olga: 'olga-pw', nemo: 'nemo-pw' }

const haveTools = chromiumPath() && haveSlapd()
if (!haveTools && !process.env.CI) {
  describe('directory users on the page', () => it('needs chromium and slapd', { skip: true }, () => {}))
} else {
  describe('directory users on the page', { concurrency: 1, timeout: 180_000 }, () => {
    let ldap, server, root, browser, page, vm, vmUuid

    before(async () => {
      if (!haveTools) throw new Error('needs chromium and slapd (apt-get install chromium slapd)')
      ldap = await startSlapd(USERS)
      server = await startServer()
      root = await rpcClient(server.url)
      const pool = (await root.call('pool.get_all'))[0]
      await root.call('pool.enable_external_auth', pool, ldap.config, 'example.org', 'LDAP')
      const sid = await root.call('auth.get_subject_identifier', 'olga')
      const subject = await root.call('subject.create', { subject_identifier: sid, other_config: { 'subject-name': 'olga' } })
      for (const r of await root.call('subject.get_roles', subject)) await root.call('subject.remove_from_roles', subject, r)
      const [operator] = await root.call('role.get_by_name_label', 'vm-operator')
      await root.call('subject.add_to_roles', subject, operator)
      const tpl = Object.entries(await root.call('VM.get_all_records')).find(([, v]) => v.is_a_template)[0]
      vm = await root.call('VM.clone', tpl, 'operated-vm')
      await root.call('VM.set_is_a_template', vm, false)
      vmUuid = await root.call('VM.get_uuid', vm)
      browser = await launch()
      page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage()
      await page.goto(server.url + '/')
    })

    after(async () => {
      await browser?.close()
      await server?.stop()
      await ldap?.stop()
    })

    it('refuses a directory user who is no subject', async () => {
      await page.getByLabel('User').fill('nemo')
      await page.getByLabel('Password').fill(USERS.nemo)
      await page.getByRole('button', { name: 'Log in' }).click()
      const err = page.getByRole('alert')
      await err.waitFor()
      assert.match(await err.innerText(), /SESSION_AUTHORIZATION_FAILED/)
    })

    it('lets a vm-operator in, start a VM, and shows the refusal of a snapshot', async () => {
      await page.getByLabel('User').fill('olga')
      await page.getByLabel('Password').fill(USERS.olga)
      await page.getByRole('button', { name: 'Log in' }).click()
      await page.getByRole('heading', { name: 'Virtual machines' }).waitFor()
      await page.locator(`.row[data-uuid="${vmUuid}"]`).waitFor()
      await page.evaluate((u) => (location.hash = `#/vm/${u}`), vmUuid)
      await page.getByRole('heading', { name: /operated-vm/ }).waitFor()
      await page.getByRole('group', { name: 'Power actions' }).getByRole('button', { name: 'Start', exact: true }).click()
      await page.locator('h1 .state.Running').waitFor({ timeout: 30_000 })
      assert.equal(await root.call('VM.get_power_state', vm), 'Running')
      await page.getByLabel('Snapshot name').fill('not allowed')
      await page.getByRole('button', { name: 'Take snapshot' }).click()
      const err = page.getByRole('alert')
      await err.waitFor()
      assert.match(await err.innerText(), /RBAC_PERMISSION_DENIED/)
      assert.deepEqual(await root.call('VM.get_snapshots', vm), [])
      await shot(page, 'directory-user-vm')
    })
  })
}
