"""Apply tests: real Ansible runs against the test hosts of testbed.py."""
