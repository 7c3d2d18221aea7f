"""The runtime: runs, scheduling, execution, hashing, serializers and stores."""
