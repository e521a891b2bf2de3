// A directory user on the page: Debian's real slapd (its own config and data
// in a temporary directory, on a free loopback port), xapid with external
// authentication enabled, and a vm-operator who logs in through the page,
// starts a VM, and sees the RBAC refusal of a snapshot; a user who is no
// subject is refused at login.
import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { chromiumPath, launch, rpcClient, shot, startServer } from './helpers.mjs'

const SUFFIX = 'dc=example,dc=org'
const ADMIN_DN = `cn=admin,${SUFFIX}`
const ADMIN_PW = 'admin-secret'
const PEOPLE = `ou=people,${SUFFIX}`
const GROUPS = `ou=groups,${SUFFIX}`
const USERS = { olga: 'olga-pw', nemo: 'nemo-pw' }

const tool = (name) => ['/usr/sbin/', '/usr/bin/'].map((d) => d + name).find((p) => existsSync(p))

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer()
    s.on('error', fail)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => ok(port))
    })
  })
}

const canConnect = (port) =>
  new Promise((ok) => {
    const c = connect({ host: '127.0.0.1', port })
    const done = (v) => (c.destroy(), ok(v))
    c.setTimeout(200, () => done(false))
    c.once('connect', () => done(true))
    c.once('error', () => done(false))
  })

/** slapd with the users above, loaded by slapadd. */
async function startSlapd() {
  const dir = mkdtempSync(join(tmpdir(), 'slapd-web-test-'))
  mkdirSync(join(dir, 'data'))
  const port = await freePort()
  const conf = join(dir, 'slapd.conf')
  writeFileSync(
    conf,
    ['core', 'cosine', 'nis', 'inetorgperson'].map((s) => `include /etc/ldap/schema/${s}.schema\n`).join('') +
      `modulepath /usr/lib/ldap\nmoduleload back_mdb\npidfile ${dir}/slapd.pid\n` +
      `database mdb\nmaxsize 10485760\nsuffix "${SUFFIX}"\nrootdn "${ADMIN_DN}"\nrootpw ${ADMIN_PW}\n` +
      `directory ${dir}/data\n` +
      'access to attrs=userPassword by self write by anonymous auth by * none\naccess to * by * read\n',
  )
  const entry = (dn, classes, attrs) =>
    [`dn: ${dn}`, ...classes.map((c) => `objectClass: ${c}`), ...Object.entries(attrs).map(([k, v]) => `${k}: ${v}`)].join('\n') + '\n'
  const ldif = [
    entry(SUFFIX, ['dcObject', 'organization'], { dc: 'example', o: 'Example' }),
    entry(PEOPLE, ['organizationalUnit'], { ou: 'people' }),
    entry(GROUPS, ['organizationalUnit'], { ou: 'groups' }),
    ...Object.entries(USERS).map(([name, pw], i) =>
      entry(`uid=${name},${PEOPLE}`, ['inetOrgPerson', 'posixAccount'], {
        uid: name,
        cn: name,
        sn: name,
        userPassword: pw,
        uidNumber: String(20000 + i),
        gidNumber: '20000',
        homeDirectory: `/home/${name}`,
      }),
    ),
  ]
  writeFileSync(join(dir, 'data.ldif'), ldif.join('\n'))
  const add = spawnSync(tool('slapadd'), ['-f', conf, '-l', join(dir, 'data.ldif')], { encoding: 'utf8', timeout: 60_000 })
  if (add.status !== 0) throw new Error(`slapadd failed: ${add.stderr}`)
  const url = `ldap://127.0.0.1:${port}`
  const proc = spawn(tool('slapd'), ['-f', conf, '-h', `${url}/`, '-d', '0'], { stdio: 'ignore' })
  process.once('exit', () => proc.kill('SIGKILL'))
  const deadline = Date.now() + 20_000
  while (!(await canConnect(port))) {
    if (proc.exitCode != null || Date.now() > deadline) throw new Error('slapd did not start')
    await sleep(50)
  }
  return {
    config: { url, bind_dn: ADMIN_DN, bind_password: ADMIN_PW, user_base: PEOPLE, group_base: GROUPS, timeout_secs: '3' },
    async stop() {
      proc.kill('SIGTERM')
      for (let i = 0; i < 100 && proc.exitCode == null; i++) await sleep(50)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

const haveTools = chromiumPath() && tool('slapd') && tool('slapadd')
if (!haveTools && !process.env.CI) {
  describe('directory users on the page', () => it('needs chromium and slapd', { skip: true }, () => {}))
} else {
  describe('directory users on the page', { concurrency: 1, timeout: 180_000 }, () => {
    let ldap, server, root, browser, page, vm, vmUuid

    before(async () => {
      if (!haveTools) throw new Error('needs chromium and slapd (apt-get install chromium slapd)')
      ldap = await startSlapd()
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
