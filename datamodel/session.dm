class session --
options db write=pool-admin

field uuid string ro-run --
field this_host ref<host> ro-run --
field this_user ref<user> ro-run --
field last_active datetime ro-run --
field pool bool ro-run --
field other_config map<string,string> rw = {} --
field is_local_superuser bool ro-run = false --
field subject ref<subject> ro-run = NULL --
field validation_time datetime ro-run = 19700101T00:00:00Z --
field auth_user_sid string ro-run = "" --
field auth_user_name string ro-run = "" --
field rbac_permissions set<string> ro-ctor = [] --
field tasks set<ref<task>> ro-run inverse=task.session --
field parent ref<session> ro-ctor = NULL --
field originator string ro-run = "" --
field client_certificate bool ro-run = false --

message logout_subject_identifier async role=pool-operator --
  param subject_identifier string --

message get_all_subject_identifiers -> set<string> async role=read-only+cert --
  result --

message local_logout role=pool-admin --

message create_from_db_file -> ref<session> async role=none --
  param filename string --
  result --

message slave_local_login_with_password -> ref<session> nosession role=pool-admin --
  param uname string --
  param pwd string --
  result --

message change_password role=none --
  param old_pwd string --
  param new_pwd string --

message logout role=read-only+cert --

message login_with_password -> ref<session> nosession role=read-only+cert --
  param uname string --
  param pwd string --
  param version string = "1.1" --
  param originator string = "" --
  result --
  errors SESSION_AUTHENTICATION_FAILED HOST_IS_SLAVE
