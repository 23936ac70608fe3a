//go:build !unix

package chromium

import "os/exec"

func setGroup(*exec.Cmd) {}

func killGroup(*exec.Cmd) {}
