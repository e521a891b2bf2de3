// A real OpenLDAP server (Debian's slapd) for directory-user tests, shared by
// tests/web and tests/node (node built-ins only): its own config and data in a
// temporary directory, on a free loopback port, loaded by slapadd. Users are
// posixAccounts under ou=people with clear-text passwords.
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { canConnect, freePort } from './net.mjs'

const SUFFIX = 'dc=example,dc=org'
const ADMIN_DN = `cn=admin,${SUFFIX}`
const ADMIN_PW = 'admin-secret'
const PEOPLE = `ou=people,${SUFFIX}`
const GROUPS = `ou=groups,${SUFFIX}`
export const tool = (name) => ['/usr/sbin/', '/usr/bin/'].map((d) => d + name).find((p) => existsSync(p))

/** slapd with `users` ({ name: password }), loaded by slapadd; `config` is
 * what pool.enable_external_auth takes. */
export async function startSlapd(users) {
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
    ...Object.entries(users).map(([name, pw], i) =>
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


/** Are slapd and slapadd installed? */
export const haveSlapd = () => Boolean(tool('slapd') && tool('slapadd'))
