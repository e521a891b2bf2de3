class subject -- An external user or group allowed to log in, together with the roles it holds.
options db getall ctor events write=pool-admin

field uuid string ro-run -- Unique identifier of this subject object.
field subject_identifier string ro-ctor = "" -- SID of the user or group in the external directory.
field other_config map<string,string> ro-ctor = {} -- Extra key/value data about the subject, fixed at creation.
field roles set<ref<role>> ro-run = [OpaqueRef:0165f154-ba3e-034e-6b27-5d271af109ba] -- Roles granted to the subject; defaults to pool-admin.

message get_permissions_name_label -> set<string> role=read-only+cert -- Returns the names of every permission the subject obtains through its roles.
  param self ref<subject> -- Subject to inspect.
  result -- Permission names available to the subject.

message remove_from_roles role=pool-admin -- Revokes one role from the subject.
  param self ref<subject> -- Subject losing the role.
  param role ref<role> -- Role to revoke; must be among the subject's current roles.

message add_to_roles role=pool-admin -- Grants an additional role to the subject.
  param self ref<subject> -- Subject receiving the role.
  param role ref<role> -- Role to grant.
