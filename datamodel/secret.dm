class secret -- A stored confidential string, such as a password, that other objects refer to.
options db getall ctor read=pool-operator

field uuid string ro-run -- Unique identifier of this secret.
field value string rw -- The confidential value itself.
field other_config map<string,string> rw = {} read=read-only+cert -- Free-form string key/value pairs attached to the secret.
