//! `ddb.adapterType`: the controller a VMDK says it is attached to.
//!
//! VMware's "Virtual Disk Format" specification knows four values: `ide`, `buslogic`,
//! `lsilogic` and `legacyESX` (qemu-img accepts exactly these too). There is no `pvscsi` or
//! `lsisas1068`: VMware writes `lsilogic` for a disk on a PVSCSI or LSI Logic SAS controller;
//! the controller itself is declared in the OVF descriptor, not in the disk.

use std::fmt;
use std::str::FromStr;

use crate::error::ImageError;

/// The `ddb.adapterType` values of the VMDK format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AdapterType {
    Ide,
    BusLogic,
    #[default]
    LsiLogic,
    /// `legacyESX`: disks of ESX 2.x virtual machines.
    LegacyEsx,
}

impl AdapterType {
    pub const ALL: [AdapterType; 4] = [
        AdapterType::Ide,
        AdapterType::BusLogic,
        AdapterType::LsiLogic,
        AdapterType::LegacyEsx,
    ];

    /// The descriptor spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AdapterType::Ide => "ide",
            AdapterType::BusLogic => "buslogic",
            AdapterType::LsiLogic => "lsilogic",
            AdapterType::LegacyEsx => "legacyESX",
        }
    }
}

impl fmt::Display for AdapterType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AdapterType {
    type Err = ImageError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AdapterType::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                ImageError::InvalidOption(format!(
                    "adapter type {s:?} (expected one of: ide, buslogic, lsilogic, legacyESX; \
                     a disk on a PVSCSI or LSI Logic SAS controller is lsilogic)"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_values_of_the_vmdk_format() {
        assert_eq!(
            "LsiLogic".parse::<AdapterType>().unwrap(),
            AdapterType::LsiLogic
        );
        for a in AdapterType::ALL {
            assert_eq!(a.as_str().parse::<AdapterType>().unwrap(), a);
        }
        assert!("scsi".parse::<AdapterType>().is_err());
    }

    #[test]
    fn controllers_are_not_adapter_types() {
        for controller in ["pvscsi", "lsisas1068"] {
            let e = controller.parse::<AdapterType>().unwrap_err().to_string();
            assert!(
                e.contains("expected one of") && e.contains("lsilogic"),
                "{e}"
            );
        }
    }
}
