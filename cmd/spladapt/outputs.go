package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/spladapt/spladapt/internal/outdir"
)

// claimOutput claims path as an output of cmd (internal/outdir): refused
// when it is or holds one of inputs, when another process writes it, and,
// for a directory (dir), when it holds data that is not a previous output
// of the same command, unless cmd has --force set. Temporaries a killed
// run left are removed. The caller defers Release.
func claimOutput(cmd *cobra.Command, path string, dir bool, inputs ...string) (*outdir.Guard, error) {
	force := false
	if f := cmd.Flags().Lookup("force"); f != nil {
		force = f.Value.String() == "true"
	}
	return outdir.Claim(path, outdir.Options{
		Command: strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" "),
		Dir:     dir,
		Force:   force,
		Inputs:  inputs,
	})
}

// addForceFlag adds --force to a command whose output is a directory.
func addForceFlag(cmd *cobra.Command) {
	cmd.Flags().Bool("force", false, "replace the output directory even when it holds data this command did not write (never one holding an input)")
}
