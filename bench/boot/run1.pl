#!/usr/bin/perl
# bench/boot/run1.pl - run one VMM boot and time it on the host clock.
#
#   run1.pl TIMEOUT_S MARKER GUEST_KIB STDERR_LOG KERNEL_PATH -- CMD [ARGS...]
#
# Starts CMD (stdin /dev/null, stdout to a pipe read here, stderr to
# STDERR_LOG) and prints one line on stdout:
#   init_ms exit_ms status rss_total_kib rss_excl_guest_kib guest_span_kib stdout_bytes
# init_ms: CLOCK_MONOTONIC from just before fork to the moment the first line
# containing MARKER is read from CMD's stdout; exit_ms: to waitpid() returning.
# At the marker, /proc/PID/smaps is read once (GUEST_KIB > 0): rss_total_kib
# is the sum of Rss over all mappings; the guest RAM is the largest anonymous
# mapping (or memfd) if it is at least GUEST_KIB, else the run of adjacent
# anonymous mappings or mappings of KERNEL_PATH around it (ember maps the
# kernel's page-aligned ranges from its file into guest RAM) that spans
# exactly GUEST_KIB; rss_excl_guest_kib = total - that range's Rss;
# guest_span_kib = the range's size (to check). "-" where not sampled.
# Exits 1 with a message on stderr if the marker does not come, or CMD does
# not exit, within TIMEOUT_S (CMD is then killed).
# Environment (bench/io_bench.sh): RUN1_MARK2=TEXT adds an 8th field, mark2_ms,
# the time to the first line containing TEXT ("-" if none came), and then
# /proc/PID/smaps is sampled at that line instead of at MARKER;
# RUN1_STDOUT=FILE keeps a copy of CMD's stdout lines in FILE.
use strict;
use warnings;
no warnings "portable";
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(clock_gettime CLOCK_MONOTONIC);

my ($timeout, $marker, $guest_kib, $errlog, $kpath, $dd, @cmd) = @ARGV;
die "usage: $0 TIMEOUT MARKER GUEST_KIB STDERR_LOG KERNEL -- CMD...\n"
    unless defined $dd && $dd eq '--' && @cmd;

sub smaps_rss {
	my ($pid) = @_;
	open(my $f, '<', "/proc/$pid/smaps") or return;
	my (@maps, $cur);
	while (<$f>) {
		if (/^([0-9a-f]+)-([0-9a-f]+)\s+\S+\s+\S+\s+\S+\s+\d+\s*(.*?)\s*$/) {
			$cur = {start => hex($1), end => hex($2), name => $3, rss => 0};
			push @maps, $cur;
		} elsif ($cur && /^Rss:\s+(\d+)\s+kB/) {
			$cur->{rss} = $1;
		}
	}
	close $f;
	my $total = 0;
	$total += $_->{rss} for @maps;
	my $anon = sub { my $n = $_[0]{name}; $n eq '' || $n =~ /^\[anon|^\/memfd:|^\/dev\/zero/ };
	my $guestish = sub { $anon->($_[0]) || $_[0]{name} eq $kpath };
	my $big = -1;
	for my $i (0 .. $#maps) {
		next unless $anon->($maps[$i]);
		$big = $i if $big < 0 ||
		    $maps[$i]{end} - $maps[$i]{start} > $maps[$big]{end} - $maps[$big]{start};
	}
	return ($total, '-', 0) if $big < 0;
	# the chain of adjacent guest-like mappings around the biggest one, then
	# inside it the range [lo, hi] around it that spans exactly the guest size
	# (or the biggest mapping alone if that is as big: QEMU adds guard pages)
	my $size = sub { $maps[$_[1]]{end} - $maps[$_[0]]{start} };
	my $target = $guest_kib * 1024;
	$target = $size->($big, $big) if $size->($big, $big) >= $target;
	my ($l, $h) = ($big, $big);
	$l-- while $l > 0 && $maps[$l - 1]{end} == $maps[$l]{start} && $guestish->($maps[$l - 1]);
	$h++ while $h < $#maps && $maps[$h + 1]{start} == $maps[$h]{end} && $guestish->($maps[$h + 1]);
	my ($lo, $hi) = ($big, $big);
	OUTER: for my $i ($l .. $big) {
		for my $j ($big .. $h) {
			if ($size->($i, $j) == $target) { ($lo, $hi) = ($i, $j); last OUTER }
		}
	}
	my $grss = 0;
	$grss += $maps[$_]{rss} for $lo .. $hi;
	my $span = ($maps[$hi]{end} - $maps[$lo]{start}) / 1024;
	return ($total, $total - $grss, $span);
}

pipe(my $r, my $w) or die "pipe: $!\n";
my $t0 = clock_gettime(CLOCK_MONOTONIC);
my $pid = fork() // die "fork: $!\n";
if ($pid == 0) {
	close $r;
	open(STDIN, '<', '/dev/null') or die;
	open(STDOUT, '>&', $w) or die;
	open(STDERR, '>', $errlog) or die;
	exec { $cmd[0] } @cmd or do { print STDERR "exec $cmd[0]: $!\n"; POSIX::_exit(127) };
}
close $w;
my $deadline = $t0 + $timeout;
my ($t_init, $t_mark2, $buf, $line, $bytes, @rss) = (undef, undef, '', '', 0);
my $mark2 = $ENV{RUN1_MARK2};
my $copy;
if ($ENV{RUN1_STDOUT}) {
	open($copy, '>', $ENV{RUN1_STDOUT}) or die "$ENV{RUN1_STDOUT}: $!\n";
	$copy->autoflush(1);
}
my $rin = '';
vec($rin, fileno($r), 1) = 1;
sub fail {
	kill 'KILL', $pid;
	waitpid($pid, 0);
	print STDERR "boot-bench: $cmd[0]: $_[0]; last line on its stdout: '$line'\n";
	exit 1;
}
while (1) {
	my $left = $deadline - clock_gettime(CLOCK_MONOTONIC);
	fail($t_init ? "did not exit within ${timeout} s" : "no init marker '$marker' within ${timeout} s") if $left <= 0;
	my $n = select(my $rout = $rin, undef, undef, $left);
	next if $n <= 0;
	my $got = sysread($r, $buf, 65536, length $buf);
	last if !$got;
	$bytes += $got;
	while ($buf =~ s/^([^\n]*)\n//) {
		$line = $1;
		$line =~ s/\r//g;
		print $copy "$line\n" if $copy;
		if (!defined $t_init && index($line, $marker) >= 0) {
			$t_init = clock_gettime(CLOCK_MONOTONIC);
			@rss = smaps_rss($pid) if $guest_kib > 0 && !defined $mark2;
		}
		if (defined $mark2 && !defined $t_mark2 && index($line, $mark2) >= 0) {
			$t_mark2 = clock_gettime(CLOCK_MONOTONIC);
			@rss = smaps_rss($pid) if $guest_kib > 0;
		}
	}
	if (!defined $t_init && index($buf, $marker) >= 0) {	# marker without newline yet
		$t_init = clock_gettime(CLOCK_MONOTONIC);
		@rss = smaps_rss($pid) if $guest_kib > 0 && !defined $mark2;
	}
}
close $r;
my $st;
while (1) {
	my $p = waitpid($pid, WNOHANG);
	if ($p == $pid) { $st = $?; last }
	fail("did not exit within ${timeout} s (stdout closed)") if clock_gettime(CLOCK_MONOTONIC) > $deadline;
	Time::HiRes::sleep(0.0005);
}
my $t_exit = clock_gettime(CLOCK_MONOTONIC);
fail("exited without printing the init marker '$marker'") unless defined $t_init;
my $status = WIFEXITED($st) ? WEXITSTATUS($st) : 128 + WTERMSIG($st);
@rss = ('-', '-', '-') unless @rss;
printf "%.1f %.1f %d %s %s %s %d", ($t_init - $t0) * 1e3, ($t_exit - $t0) * 1e3, $status, @rss, $bytes;
if (defined $mark2) {
	print defined $t_mark2 ? sprintf(" %.1f", ($t_mark2 - $t0) * 1e3) : " -";
}
print "\n";
