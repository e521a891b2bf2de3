class session -- An authenticated client login; most API calls require a session reference.
options db write=pool-admin transient

field uuid string ro-run -- Unique identifier of this session object.
field this_host ref<host> ro-run -- Host the session was opened against.
field this_user ref<user> ro-run -- Legacy user link; always NULL because the user class is deprecated.
field last_active datetime ro-run -- Time the session was last used; refreshed lazily, at most every 600 s.
field pool bool ro-run -- True for internal sessions between pool members, false for client logins.
field other_config map<string,string> rw = {} -- Free-form string key/value pairs attached to the session.
field is_local_superuser bool ro-run = false -- True if opened with local root credentials; such sessions bypass RBAC checks.
field subject ref<subject> ro-run = NULL -- Subject whose login produced the session; not meaningful for local superuser sessions.
field validation_time datetime ro-run = 19700101T00:00:00Z -- Time the session's credentials were last checked.
field auth_user_sid string ro-run = "" -- Directory SID of the externally authenticated user; empty for local root logins.
field auth_user_name string ro-run = "" -- User name the session was authenticated as, e.g. root or a directory account.
field rbac_permissions set<string> ro-ctor = [] -- Names of the RBAC permissions granted to the session; empty for superuser sessions.
field tasks set<ref<task>> ro-run inverse=task.session -- Tasks that were created through this session.
field parent ref<session> ro-ctor = NULL -- Session that spawned this one, or NULL if none.
field originator string ro-run = "" -- Client-chosen tag telling apart applications that share one login name; used for session limits.
field client_certificate bool ro-run = false -- True if the login was authenticated with a TLS client certificate.

message logout_subject_identifier async role=pool-operator -- Terminates every session of the given external subject, apart from the session making this call.
  param subject_identifier string -- Directory SID whose sessions should be closed.

message get_all_subject_identifiers -> set<string> async role=read-only+cert -- Lists the SIDs of users who currently hold open sessions.
  result -- SIDs of the users owning the existing sessions.

message local_logout role=pool-admin -- Closes a host-local emergency session obtained from slave_local_login_with_password.

message create_from_db_file -> ref<session> async role=none -- Opens a session that reads a database dump file rather than the live database; for local root only.
  param filename string -- Path of the database dump to load.
  result -- Reference to the new session.

message slave_local_login_with_password -> ref<session> nosession role=pool-admin -- Emergency-mode login on a pool member with local root credentials; the in-memory session works only on that host.
  param uname string -- Local account name, normally root.
  param pwd string -- Password for that account.
  result -- Reference to the new host-local session.

message change_password role=none -- Changes the account's password; only allowed from a local superuser session.
  param old_pwd string -- Current password of the account.
  param new_pwd string -- Password to set.

message logout role=read-only+cert -- Ends the caller's session; event.from or event.next calls blocked on it return SESSION_INVALID.

message login_with_password -> ref<session> nosession role=read-only+cert -- Checks a user name and password and opens a new session; pool members reply HOST_IS_SLAVE, failures SESSION_AUTHENTICATION_FAILED.
  param uname string -- Account name to authenticate.
  param pwd string -- Password for the account.
  param version string = "1.1" -- Client API version string; accepted but ignored.
  param originator string = "" -- Optional client tag stored in the session and used to group it for limits.
  result -- The new session's reference.
  errors SESSION_AUTHENTICATION_FAILED HOST_IS_SLAVE
