#!/bin/sh
echo "demo app $(cat "$(dirname "$0")/VERSION")"
