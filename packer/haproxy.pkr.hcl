# The HAProxy appliance built in vSphere: Packer boots the Debian 12 installer in a VM with the
# appliance's virtual hardware (PVSCSI disk, VmxNet3 NIC, BIOS), provisions the same content
# `ova-builder appliance` puts in its root filesystem, exports the VM, and hands the exported
# disk to `ova-builder build` (post-processor), so the OVA is made by the same code either way.
#
#   packer build -var-file=my.pkrvars.hcl packer/
#
# Paths are relative to the repository root: run packer from there. See packer/README.md.
# `packer validate -var-file=packer/example.pkrvars.hcl packer/` runs in CI
# (tests/appliance_boot.rs, `packer_template_validates`).

variable "vcenter_server" {
  type        = string
  description = "vCenter host name or IP."
}

variable "vcenter_username" {
  type = string
}

variable "vcenter_password" {
  type      = string
  sensitive = true
}

variable "vcenter_insecure" {
  type        = bool
  default     = false
  description = "Accept vCenter's certificate without verification (lab setups only)."
}

variable "datacenter" {
  type = string
}

variable "cluster" {
  type = string
}

variable "datastore" {
  type = string
}

variable "network" {
  type        = string
  description = "Port group the build VM uses to reach the Debian mirror (DHCP)."
}

variable "folder" {
  type    = string
  default = ""
}

variable "version" {
  type        = string
  description = "Appliance version: VM name, OVA name (haproxy-v<version>.ova), OVF product version."
}

variable "iso_url" {
  type    = string
  default = "https://cdimage.debian.org/cdimage/archive/12.11.0/amd64/iso-cd/debian-12.11.0-amd64-netinst.iso"
}

variable "iso_checksum" {
  type        = string
  description = "Checksum of iso_url: \"sha256:<hex>\", or \"file:<URL of SHA256SUMS>\"."
}

variable "build_password" {
  type        = string
  sensitive   = true
  description = "Temporary root password of the build VM (locked again before export)."
}

variable "firstboot_binary" {
  type    = string
  default = "target/release/haproxy-firstboot"
}

variable "firstboot_units" {
  type        = string
  default     = "firstboot/systemd"
  description = "Directory with haproxy-firstboot.service (and dataplaneapi.service)."
}

variable "dataplaneapi_binary" {
  type        = string
  default     = ""
  description = "The Data Plane API executable; empty = an appliance without it."
}

variable "ova_builder" {
  type    = string
  default = "target/release/ova-builder"
}

variable "output_dir" {
  type    = string
  default = "dist"
}

locals {
  vm_name    = "haproxy-${var.version}"
  export_dir = "${var.output_dir}/packer-${var.version}"
}

source "vsphere-iso" "haproxy" {
  vcenter_server      = var.vcenter_server
  username            = var.vcenter_username
  password            = var.vcenter_password
  insecure_connection = var.vcenter_insecure
  datacenter          = var.datacenter
  cluster             = var.cluster
  datastore           = var.datastore
  folder              = var.folder

  vm_name       = local.vm_name
  guest_os_type = "debian10_64Guest"
  firmware      = "bios"
  CPUs          = 2
  RAM           = 4096
  # The hardware of builder/appliance/haproxy.toml: Debian's cloud kernel has PVSCSI and
  # VmxNet3 drivers only.
  disk_controller_type = ["pvscsi"]
  storage {
    disk_size             = 4096
    disk_thin_provisioned = true
  }
  network_adapters {
    network      = var.network
    network_card = "vmxnet3"
  }

  iso_url      = var.iso_url
  iso_checksum = var.iso_checksum
  http_directory = "packer/http"
  boot_wait      = "5s"
  boot_command = [
    "<esc><wait>",
    "auto url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg ",
    "priority=critical interface=auto ",
    "passwd/root-password=${var.build_password} passwd/root-password-again=${var.build_password} ",
    "<enter>"
  ]

  ssh_username     = "root"
  ssh_password     = var.build_password
  ssh_timeout      = "30m"
  shutdown_command = "systemctl poweroff"

  export {
    output_directory = local.export_dir
    force            = true
  }
}

build {
  sources = ["source.vsphere-iso.haproxy"]

  provisioner "file" {
    source      = var.firstboot_binary
    destination = "/tmp/haproxy-firstboot"
  }

  provisioner "file" {
    source      = "${var.firstboot_units}/"
    destination = "/tmp/units"
  }

  # The same unit `ova-builder appliance` installs: SSH host keys are made at first boot.
  provisioner "file" {
    source      = "builder/templates/appliance/ssh-hostkeys.service"
    destination = "/tmp/ssh-hostkeys.service"
  }

  provisioner "shell" {
    environment_vars = ["DATAPLANEAPI=${var.dataplaneapi_binary == "" ? "no" : "yes"}"]
    script           = "packer/provision.sh"
  }

  # Installed after provision.sh so that its "no Data Plane API" branch can see it is absent.
  provisioner "file" {
    source      = var.dataplaneapi_binary == "" ? "/dev/null" : var.dataplaneapi_binary
    destination = "/tmp/dataplaneapi"
  }

  provisioner "shell" {
    inline = [
      "if [ -s /tmp/dataplaneapi ]; then install -m 0755 /tmp/dataplaneapi /usr/local/bin/dataplaneapi && systemctl enable dataplaneapi.service; fi",
      "rm -f /tmp/dataplaneapi",
      # Last: per-deployment identity and the build's root password go.
      "rm -f /etc/ssh/ssh_host_*",
      "truncate -s 0 /etc/machine-id",
      "passwd -l root",
    ]
  }

  # The exported VM's disk through the same packaging as `ova-builder appliance`.
  post-processor "shell-local" {
    inline = [
      "${var.ova_builder} build --disk ${local.export_dir}/${local.vm_name}-disk-0.vmdk --version ${var.version} --base-image 'Debian 12 (Packer vsphere-iso)' --out ${var.output_dir}",
    ]
  }
}
