class user -- Deprecated record describing a local user account.
options db ctor write=pool-admin deprecated

field uuid string ro-run -- Unique identifier of this user.
field short_name string ro-ctor -- Login name or user ID.
field fullname string rw -- The user's full name.
field other_config map<string,string> rw = {} -- Free-form string key/value pairs.
