//! Disk images: readers that turn an input disk into its virtual size and allocated extents
//! (disk → extents), and the streamOptimized VMDK writer (extents → VMDK).
