# Example values (used by `packer validate` in CI). Copy, adjust, and keep passwords out of git:
# pass them with -var or PKR_VAR_vcenter_password / PKR_VAR_build_password.
vcenter_server   = "vcenter.example.com"
vcenter_username = "administrator@vsphere.local"
vcenter_password = "example-only"
datacenter       = "Datacenter"
cluster          = "Cluster"
datastore        = "datastore1"
network          = "VM Network"
version          = "1.2.3"
# The sha256 of iso_url (see SHA256SUMS next to it), or "file:https://…/SHA256SUMS".
iso_checksum     = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
build_password   = "example-only"
