"""apply: roll a plan out to the hosts with Ansible, and read back what is live.

- ansible.py: the one typed adapter over ansible-runner (every playbook run goes through it)
- sshmux.py: the SSH connections the playbook runs of one tfsconf process share
- inventory.py: the Ansible inventory, from the resolved environment
- record.py: the last-applied record each host keeps, and the live StateSource over it
- work.py: what each host must do, from a Plan and the compiled bundle
- rollout.py: preflight, the staged rollout per group, lock release, the report
- serving.py: the controller side of TF Serving's gRPC API (reload, status, smoke predict)
- tunnel.py: that gRPC over an SSH port forward, for hosts only SSH reaches (grpc_via: ssh)
"""
