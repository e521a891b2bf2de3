class role -- An RBAC role: a named bundle of permissions, each permission itself being a role object.
options db getall events static

field uuid string ro-run -- Unique identifier of this role.
field name/label string ro-ctor = "" -- Short name of the role or permission, e.g. pool-admin or vm.start.
field name/description string ro-ctor = "" -- Readable explanation of what the role is for.
field subroles set<ref<role>> ro-ctor = [] -- Roles and permissions contained in this role; empty for a single permission.
field is_internal bool ro-run = false -- True if only the server assigns this role internally; clients should not use it.

message get_by_permission_name_label -> set<ref<role>> role=read-only+cert -- Finds every role that includes the permission with the given name.
  param label string -- Name of the permission to look for.
  result -- Roles that contain the permission.

message get_by_permission -> set<ref<role>> role=read-only+cert -- Finds every role that includes the given permission object.
  param permission ref<role> -- The permission, as a role reference.
  result -- Roles that contain the permission.

message get_permissions_name_label -> set<string> role=read-only+cert -- Returns the names of all permissions the role grants.
  param self ref<role> -- Role to inspect.
  result -- Permission names granted by the role.

message get_permissions -> set<ref<role>> role=read-only+cert -- Returns all permissions the role grants, as role references.
  param self ref<role> -- Role to inspect.
  result -- Permission objects granted by the role.
