class auth -- Lookups against the configured external directory service, such as Active Directory.
options 


message get_group_membership -> set<string> role=read-only+cert -- Asks the external directory for all groups the subject belongs to, nested groups included.
  param subject_identifier string -- Directory-unique SID of the user or group.
  result -- SIDs of every group containing the subject, followed transitively.

message get_subject_information_from_identifier -> map<string,string> role=read-only+cert -- Fetches directory attributes (user name, organisation and so on) for a SID.
  param subject_identifier string -- Directory-unique SID of the subject to describe.
  result -- Attribute key/value pairs; a subject_name key is always present.

message get_subject_identifier -> string role=read-only+cert -- Translates a readable user or group name into its directory SID.
  param subject_name string -- User or group name as known to the directory.
  result -- Directory SID for that name.
