//! OVF 1.x descriptors: a typed model, a writer and a reader, and appliance definitions
//! (definition → descriptor).
