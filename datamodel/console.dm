class console -- A remote access endpoint to a VM's text or graphical console.
options db getall ctor events write=vm-admin

enum console_protocol -- Protocol spoken by a console.
  value vt100 -- Text terminal using VT100 escape codes.
  value rfb -- RFB, the graphical protocol underlying VNC.
  value rdp -- Microsoft Remote Desktop Protocol.

field uuid string ro-run -- Unique identifier of the console.
field protocol console_protocol ro-run -- Protocol used to talk to this console.
field location string ro-run -- URI at which the console can be reached.
field VM ref<VM> ro-run -- VM this console belongs to.
field other_config map<string,string> rw -- Free-form key/value configuration.
