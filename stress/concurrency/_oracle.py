"""The harness's oracle: plain functions of write-time facts. It never calls safeckpt."""
