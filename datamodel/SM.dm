class SM -- A storage manager plugin: the driver that implements one SR type.
options db getall events

field uuid string ro-run -- Stable unique identifier (UUID) of this plugin record.
field name/label string ro-run = "" -- Human-readable name of the plugin.
field name/description string ro-run = "" -- Human-readable notes about the plugin.
field type string ro-run -- SR type implemented by this plugin; matches SR.type.
field vendor string ro-run -- Vendor that wrote the plugin.
field copyright string ro-run -- Holder of the plugin's copyright.
field version string ro-run -- Version string of the plugin.
field required_api_version string ro-run -- Lowest SM API version the plugin needs from the server.
field configuration map<string,string> ro-run -- Supported device_config keys, each mapped to a description.
field capabilities set<string> ro-run = [] deprecated -- Deprecated list of plugin capabilities; use features instead.
field features map<string,int> ro-run = {} -- Plugin capabilities, each mapped to the version of that capability.
field other_config map<string,string> rw = {} -- Free-form key/value pairs for additional configuration.
field driver_filename string ro-run = "" -- File name of the driver that implements the plugin.
field required_cluster_stack set<string> ro-run = [] -- Cluster stacks of which at least one must be configured and running for this plugin.
