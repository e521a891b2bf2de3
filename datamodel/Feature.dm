class Feature --
options db getall events

field uuid string ro-run --
field name/label string ro-ctor = "" --
field name/description string ro-ctor = "" --
field enabled bool ro-run = false --
field experimental bool ro-ctor = false --
field version string ro-ctor = "1.0" --
field host ref<host> ro-run --
