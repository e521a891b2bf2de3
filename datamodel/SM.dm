class SM --
options db getall events

field uuid string ro-run --
field name/label string ro-run = "" --
field name/description string ro-run = "" --
field type string ro-run --
field vendor string ro-run --
field copyright string ro-run --
field version string ro-run --
field required_api_version string ro-run --
field configuration map<string,string> ro-run --
field capabilities set<string> ro-run = [] deprecated --
field features map<string,int> ro-run = {} --
field other_config map<string,string> rw = {} --
field driver_filename string ro-run = "" --
field required_cluster_stack set<string> ro-run = [] --
