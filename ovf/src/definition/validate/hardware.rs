//! `[hardware]`: counts, firmware, disk controller, extra configuration.

use toml::Spanned;

use super::Ctx;
use crate::definition::raw::{RawHardware, RawKeyValue};
use crate::definition::{DefinitionError, DiskController, Firmware, Hardware};

impl Ctx<'_> {
    pub(super) fn hardware(&self, h: RawHardware) -> Result<Hardware, DefinitionError> {
        self.hardware_counts(&h)?;
        let firmware = h
            .firmware
            .get_ref()
            .parse::<Firmware>()
            .map_err(|e| self.invalid(h.firmware.span(), e.to_string()))?;
        let disk_controller = h
            .disk_controller
            .get_ref()
            .parse::<DiskController>()
            .map_err(|e| self.invalid(h.disk_controller.span(), e.to_string()))?;
        let extra_config = self.extra_config(h.extra_config)?;
        Ok(Hardware {
            virtual_system_type: h.virtual_system_type,
            cpus: h.cpus.into_inner(),
            cores_per_socket: h.cores_per_socket.map(Spanned::into_inner),
            memory_mib: h.memory_mib.into_inner(),
            firmware,
            disk_controller,
            cdrom: h.cdrom,
            transport: h.transport,
            extra_config,
        })
    }

    /// CPUs and memory at least 1; cores per socket divide the CPUs.
    fn hardware_counts(&self, h: &RawHardware) -> Result<(), DefinitionError> {
        if *h.cpus.get_ref() == 0 {
            return Err(self.invalid(h.cpus.span(), "hardware.cpus must be at least 1"));
        }
        if *h.memory_mib.get_ref() == 0 {
            return Err(self.invalid(
                h.memory_mib.span(),
                "hardware.memory_mib must be at least 1",
            ));
        }
        if let Some(cores) = &h.cores_per_socket {
            let c = *cores.get_ref();
            if c == 0 || !h.cpus.get_ref().is_multiple_of(c) {
                return Err(self.invalid(
                    cores.span(),
                    format!(
                        "hardware.cores_per_socket = {c} does not divide hardware.cpus = {}",
                        h.cpus.get_ref()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Non-empty, unique keys, in order.
    fn extra_config(
        &self,
        raw: Vec<RawKeyValue>,
    ) -> Result<Vec<(String, String)>, DefinitionError> {
        let mut extra_config: Vec<(String, String)> = Vec::new();
        for kv in raw {
            if kv.key.get_ref().trim().is_empty() {
                return Err(self.invalid(kv.key.span(), "an extra_config key must not be empty"));
            }
            if extra_config.iter().any(|(k, _)| k == kv.key.get_ref()) {
                return Err(self.invalid(
                    kv.key.span(),
                    format!("extra_config key `{}` is given twice", kv.key.get_ref()),
                ));
            }
            extra_config.push((kv.key.into_inner(), kv.value));
        }
        Ok(extra_config)
    }
}
