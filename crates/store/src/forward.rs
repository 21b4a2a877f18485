//! The forwarder's cursor: the last audit record sent to each syslog target.
