#!/usr/bin/perl
# bench/boot/mkinitramfs.pl OUT BUSYBOX - write the boot benchmark's initramfs
# (an uncompressed newc cpio) without root: /bin/busybox (static), /init,
# /dev/console and /dev/ttyS0 device nodes.
#
# /init writes the line EMBER-BENCH-INIT to the serial console, sleeps
# $benchsleep seconds if the kernel command line sets benchsleep=N (the kernel
# passes unknown name=value parameters to init's environment), then powers
# off at once (poweroff -f: reboot(2), ACPI S5). An optional third argument
# INIT names a file whose text is /init instead (bench/restore_bench.sh).
use strict;
use warnings;

my ($out, $busybox, $init_file) = @ARGV;
die "usage: $0 OUT BUSYBOX [INIT]\n" unless defined $busybox;
open(my $bf, '<:raw', $busybox) or die "$busybox: $!\n";
my $bb = do { local $/; <$bf> };
close $bf;

my $init = <<'SH';
#!/bin/busybox sh
echo EMBER-BENCH-INIT > /dev/ttyS0
[ -n "$benchsleep" ] && /bin/busybox sleep "$benchsleep"
/bin/busybox poweroff -f
SH
if (defined $init_file) {
	open(my $if, '<:raw', $init_file) or die "$init_file: $!\n";
	$init = do { local $/; <$if> };
	close $if;
}

my $ino = 1;
my $cpio = '';
sub entry {
	my ($name, $mode, $data, $rmaj, $rmin) = @_;
	$data //= '';
	my $hdr = sprintf('070701' . ('%08X' x 13), $ino++, $mode, 0, 0, 1, 0,
			  length($data), 0, 0, $rmaj // 0, $rmin // 0, length($name) + 1, 0);
	$cpio .= $hdr . $name . "\0";
	$cpio .= "\0" x ((4 - length($cpio) % 4) % 4);
	$cpio .= $data;
	$cpio .= "\0" x ((4 - length($cpio) % 4) % 4);
}
entry('bin', 040755);
entry('dev', 040755);
entry('proc', 040755);
entry('dev/console', 020600, '', 5, 1);
entry('dev/ttyS0', 020600, '', 4, 64);
entry('bin/busybox', 0100755, $bb);
entry('init', 0100755, $init);
entry('TRAILER!!!', 0);
open(my $of, '>:raw', $out) or die "$out: $!\n";
print $of $cpio or die "$out: $!\n";
close $of or die "$out: $!\n";
