//! KVM engine (Linux hosts with /dev/kvm).
