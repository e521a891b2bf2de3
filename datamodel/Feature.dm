class Feature -- A piece of optional functionality and whether a given host offers it.
options db getall events

field uuid string ro-run -- Unique identifier of this feature object.
field name/label string ro-ctor = "" -- Short human-readable name of the feature.
field name/description string ro-ctor = "" -- Longer human-readable explanation of the feature.
field enabled bool ro-run = false -- True if the feature is currently switched on for this host.
field experimental bool ro-ctor = false -- True if the feature is experimental rather than stable and fully supported.
field version string ro-ctor = "1.0" -- Version string of this feature's implementation.
field host ref<host> ro-run -- Host that offers this feature.
