//! The property keys first boot reads (`class.key`).

pub const ROOT_PWD: &str = "appliance.root_pwd";
pub const PERMIT_ROOT_LOGIN: &str = "appliance.permit_root_login";
pub const CA_CERT: &str = "appliance.ca_cert";
pub const CA_CERT_KEY: &str = "appliance.ca_cert_key";
pub const HOSTNAME: &str = "network.hostname";
pub const NAMESERVERS: &str = "network.nameservers";
pub const MANAGEMENT_IP: &str = "network.management_ip";
pub const MANAGEMENT_GATEWAY: &str = "network.management_gateway";
pub const WORKLOAD_IP: &str = "network.workload_ip";
pub const WORKLOAD_GATEWAY: &str = "network.workload_gateway";
pub const ADDITIONAL_WORKLOAD_NETWORKS: &str = "network.additional_workload_networks";
pub const FRONTEND_IP: &str = "network.frontend_ip";
pub const FRONTEND_GATEWAY: &str = "network.frontend_gateway";
pub const SERVICE_IP_RANGE: &str = "loadbalance.service_ip_range";
pub const DATAPLANE_PORT: &str = "loadbalance.dataplane_port";
pub const HAPROXY_USER: &str = "loadbalance.haproxy_user";
pub const HAPROXY_PWD: &str = "loadbalance.haproxy_pwd";
pub const HA_PEER_IP: &str = "ha.peer_ip";
pub const HA_MANAGEMENT_VIP: &str = "ha.management_vip";
pub const HA_ROUTER_ID: &str = "ha.router_id";
pub const HA_ROLE: &str = "ha.role";
pub const HA_SHARED_SECRET: &str = "ha.shared_secret";

/// Every user-configurable key first boot understands.
pub const ALL: &[&str] = &[
    ROOT_PWD,
    PERMIT_ROOT_LOGIN,
    CA_CERT,
    CA_CERT_KEY,
    HOSTNAME,
    NAMESERVERS,
    MANAGEMENT_IP,
    MANAGEMENT_GATEWAY,
    WORKLOAD_IP,
    WORKLOAD_GATEWAY,
    ADDITIONAL_WORKLOAD_NETWORKS,
    FRONTEND_IP,
    FRONTEND_GATEWAY,
    SERVICE_IP_RANGE,
    DATAPLANE_PORT,
    HAPROXY_USER,
    HAPROXY_PWD,
    HA_PEER_IP,
    HA_MANAGEMENT_VIP,
    HA_ROUTER_ID,
    HA_ROLE,
    HA_SHARED_SECRET,
];
