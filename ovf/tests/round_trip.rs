//! write → read → write is byte-identical, and reading what was written gives the model back.
#![allow(clippy::unwrap_used)]

mod support;

use ovf::*;

/// An envelope with every field of the model set.
// One literal that sets every model field: splitting it would scatter the fixture.
#[allow(clippy::too_many_lines)]
fn everything() -> Envelope {
    Envelope {
        lang: Some("de-DE".into()),
        references: vec![
            File {
                id: "file1".into(),
                href: "disk1.vmdk".into(),
                size: Some(123_456_789),
                compression: Some("gzip".into()),
                chunk_size: Some(1 << 30),
            },
            File {
                id: "file2".into(),
                href: "disk2.vmdk".into(),
                ..File::default()
            },
        ],
        disk_section: Some(DiskSection {
            info: "disks".into(),
            required: Some(true),
            disks: vec![
                Disk {
                    disk_id: "vmdisk1".into(),
                    file_ref: Some("file1".into()),
                    capacity: "20".into(),
                    capacity_allocation_units: Some("byte * 2^30".into()),
                    format: Some(
                        "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
                            .into(),
                    ),
                    populated_size: Some(987_654_321),
                    parent_ref: None,
                },
                Disk {
                    disk_id: "vmdisk2".into(),
                    file_ref: Some("file2".into()),
                    capacity: "1073741824".into(),
                    parent_ref: Some("vmdisk1".into()),
                    ..Disk::default()
                },
            ],
        }),
        network_section: Some(NetworkSection {
            info: "nets".into(),
            required: None,
            networks: vec![
                Network {
                    name: "A".into(),
                    description: Some(String::new()),
                    configuration: None,
                },
                Network {
                    name: "B".into(),
                    description: None,
                    configuration: Some("big small".into()),
                },
            ],
        }),
        deployment_option_section: Some(DeploymentOptionSection {
            info: "options".into(),
            required: Some(false),
            configurations: vec![
                Configuration {
                    id: "small".into(),
                    default: Some(true),
                    label: "Small".into(),
                    description: "s".into(),
                },
                Configuration {
                    id: "big".into(),
                    default: Some(false),
                    label: "Big".into(),
                    description: String::new(),
                },
            ],
        }),
        unknown_sections: Vec::new(),
        virtual_system: Some(VirtualSystem {
            id: "vm".into(),
            info: "a VM".into(),
            name: Some("VM".into()),
            annotation_section: Some(AnnotationSection {
                info: "note".into(),
                required: None,
                annotation: "  leading and trailing spaces  ".into(),
            }),
            product_sections: vec![ProductSection {
                info: "product".into(),
                required: Some(false),
                class: Some("c".into()),
                instance: Some("1".into()),
                product: Some("P".into()),
                vendor: Some("V".into()),
                version: Some("1".into()),
                full_version: Some("1.0.0".into()),
                product_url: Some("https://p".into()),
                vendor_url: Some("https://v".into()),
                app_url: Some("https://app".into()),
                items: vec![
                    ProductItem::Property(Property {
                        key: "before_category".into(),
                        type_name: "uint16".into(),
                        ..Property::default()
                    }),
                    ProductItem::Category("Cat".into()),
                    ProductItem::Property(Property {
                        key: "k".into(),
                        type_name: "string".into(),
                        qualifiers: Some("ValueMap{\"a\",\"b\"}".into()),
                        value: Some("a".into()),
                        user_configurable: Some(true),
                        password: Some(false),
                        configuration: Some("big".into()),
                        label: Some("L".into()),
                        description: Some("D".into()),
                        values: vec![
                            PropertyValue {
                                value: "b".into(),
                                configuration: Some("big".into()),
                            },
                            PropertyValue {
                                value: "a".into(),
                                configuration: None,
                            },
                        ],
                    }),
                ],
            }],
            eula_sections: vec![
                EulaSection {
                    info: "eula 1".into(),
                    required: None,
                    license: "one".into(),
                },
                EulaSection {
                    info: "eula 2".into(),
                    required: Some(false),
                    license: String::new(),
                },
            ],
            operating_system_section: Some(OperatingSystemSection {
                info: "os".into(),
                required: None,
                id: 101,
                version: Some("12".into()),
                description: Some("Linux".into()),
                vmw_os_type: Some("other5xLinux64Guest".into()),
            }),
            virtual_hardware_sections: vec![VirtualHardwareSection {
                info: "hw".into(),
                required: None,
                id: Some("hw1".into()),
                transport: Some("iso com.vmware.guestInfo".into()),
                system: Some(System {
                    description: Some("system".into()),
                    element_name: "Virtual Hardware Family".into(),
                    instance_id: "0".into(),
                    virtual_system_identifier: Some("vm".into()),
                    virtual_system_type: Some("vmx-13 vmx-14".into()),
                }),
                items: vec![Item {
                    required: Some(false),
                    configuration: Some("big".into()),
                    bound: Some("normal".into()),
                    address: Some("a".into()),
                    address_on_parent: Some("b".into()),
                    allocation_units: Some("c".into()),
                    automatic_allocation: Some("true".into()),
                    automatic_deallocation: Some("false".into()),
                    caption: Some("caption".into()),
                    connections: vec!["A".into(), "B".into()],
                    consumer_visibility: Some("3".into()),
                    description: Some("d".into()),
                    element_name: "e".into(),
                    host_resources: vec!["ovf:/disk/vmdisk1".into(), "ovf:/file/file2".into()],
                    instance_id: "1".into(),
                    limit: Some("10".into()),
                    mapping_behavior: Some("2".into()),
                    other_resource_type: Some("x".into()),
                    parent: Some("0".into()),
                    pool_id: Some("pool".into()),
                    reservation: Some("5".into()),
                    resource_sub_type: Some("sub".into()),
                    resource_type: Some("1".into()),
                    virtual_quantity: Some("7".into()),
                    virtual_quantity_units: Some("count".into()),
                    weight: Some("100".into()),
                    vmw_cores_per_socket: Some(VmwCoresPerSocket {
                        required: Some(false),
                        value: "1".into(),
                    }),
                    vmw_config: vec![
                        VmwConfig {
                            required: None,
                            key: "a".into(),
                            value: "1".into(),
                        },
                        VmwConfig {
                            required: Some(true),
                            key: "b".into(),
                            value: String::new(),
                        },
                    ],
                }],
                vmw_config: vec![VmwConfig {
                    required: Some(false),
                    key: "firmware".into(),
                    value: "efi".into(),
                }],
                vmw_extra_config: vec![VmwConfig {
                    required: None,
                    key: "x.y".into(),
                    value: "TRUE".into(),
                }],
            }],
            unknown_sections: Vec::new(),
        }),
        unknown_content: None,
        strings: vec![Strings {
            lang: Some("fr-FR".into()),
            file_ref: None,
            messages: vec![
                ("m1".into(), "bonjour".into()),
                ("m2".into(), String::new()),
            ],
        }],
    }
}

fn assert_round_trip(envelope: &Envelope) -> String {
    let xml = write(envelope);
    let back = read(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(&back, envelope);
    let again = write(&back);
    assert_eq!(again, xml, "second write differs");
    xml
}

#[test]
fn every_model_field_round_trips() {
    assert_round_trip(&everything());
}

#[test]
fn an_empty_envelope_round_trips() {
    assert_round_trip(&Envelope::default());
}

#[test]
fn the_haproxy_descriptor_round_trips_byte_identically() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../builder/appliance/haproxy.toml");
    let def = Definition::from_file(path).unwrap();
    for facts in [
        BuildFacts::default(),
        BuildFacts {
            disk: DiskFacts {
                file_name: Some("haproxy-v1.2.3-disk1.vmdk".into()),
                file_size: Some(162_529_280),
                capacity: Some(2_147_483_648),
                populated_size: Some(428_867_584),
            },
            version: Some("1.2.3".into()),
            build_date: Some("2026-11-21T22:00:00Z".into()),
            base_image: Some("debian bookworm (mmdebstrap)".into()),
            full_version: Some(
                "1.2.3; Data Plane API: haproxy-dataplaneapi 0.1.0 (HAProxy Data Plane API v2)"
                    .into(),
            ),
        },
    ] {
        let xml = assert_round_trip(&def.to_envelope(&facts));
        support::assert_valid(&xml, "haproxy.ovf");
    }
}

#[test]
fn the_writer_is_stable_and_pretty() {
    let xml = write(&everything());
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Envelope "));
    assert!(xml.ends_with("</Envelope>\n"));
    assert!(xml.contains("\n  <References>\n    <File ovf:id=\"file1\""));
    // Text-only elements stay on one line, so whitespace in text is exactly the text.
    assert!(xml.contains("<Annotation>  leading and trailing spaces  </Annotation>"));
    assert_eq!(write(&everything()), xml);
}

#[test]
fn rasd_children_are_in_schema_order() {
    let xml = write(&everything());
    let order = [
        "rasd:Address>",
        "rasd:AddressOnParent>",
        "rasd:AllocationUnits>",
        "rasd:AutomaticAllocation>",
        "rasd:AutomaticDeallocation>",
        "rasd:Caption>",
        "rasd:Connection>",
        "rasd:ConsumerVisibility>",
        "rasd:Description>",
        "rasd:ElementName>",
        "rasd:HostResource>",
        "rasd:InstanceID>",
        "rasd:Limit>",
        "rasd:MappingBehavior>",
        "rasd:OtherResourceType>",
        "rasd:Parent>",
        "rasd:PoolID>",
        "rasd:Reservation>",
        "rasd:ResourceSubType>",
        "rasd:ResourceType>",
        "rasd:VirtualQuantity>",
        "rasd:VirtualQuantityUnits>",
        "rasd:Weight>",
        "vmw:CoresPerSocket ",
        "vmw:Config ",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|tag| {
            xml.find(&format!("<{tag}"))
                .unwrap_or_else(|| panic!("{tag} missing"))
        })
        .collect();
    let mut sorted = positions.clone();
    sorted.sort();
    assert_eq!(positions, sorted);
    // Alphabetical, as the schema's sequence is.
    let names: Vec<&str> = order[..23]
        .iter()
        .map(|t| t.trim_end_matches('>'))
        .collect();
    let mut alphabetical = names.clone();
    alphabetical.sort();
    assert_eq!(names, alphabetical);
}

#[test]
fn the_validator_rejects_rasd_children_out_of_order() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../builder/appliance/haproxy.toml");
    let def = Definition::from_file(path).unwrap();
    let good = write(&def.to_envelope(&BuildFacts::default()));
    // Put the CPU item's Description after its ElementName by hand: the schema must refuse.
    let bad = good.replacen(
        "        <rasd:Description>Number of Virtual CPUs</rasd:Description>\n        <rasd:ElementName>2 virtual CPU(s)</rasd:ElementName>\n",
        "        <rasd:ElementName>2 virtual CPU(s)</rasd:ElementName>\n        <rasd:Description>Number of Virtual CPUs</rasd:Description>\n",
        1,
    );
    assert_ne!(bad, good);
    if support::accepts(&good, true).is_some() {
        assert_eq!(support::accepts(&good, false), Some(true));
        assert_eq!(support::accepts(&bad, false), Some(false));
        assert_eq!(support::accepts(&bad, true), Some(false));
    }
}

#[test]
fn strict_validation_refuses_vmware_storage_sections() {
    // Why the writer never emits vmw:StorageSection: only the lax VMware stub accepts it.
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../builder/appliance/haproxy.toml");
    let def = Definition::from_file(path).unwrap();
    let good = write(&def.to_envelope(&BuildFacts::default()));
    let with_storage = good.replacen(
        "    <OperatingSystemSection",
        "    <vmw:StorageSection ovf:required=\"false\" vmw:group=\"group1\">\n      <Info>Storage policy group reference</Info>\n    </vmw:StorageSection>\n    <OperatingSystemSection",
        1,
    );
    assert_ne!(with_storage, good);
    if support::accepts(&good, true).is_some() {
        assert_eq!(support::accepts(&with_storage, false), Some(true));
        assert_eq!(support::accepts(&with_storage, true), Some(false));
    }
}
