#!/bin/sh
# Recurring job of the demo catalog: the command line runs date >> runs.log.
