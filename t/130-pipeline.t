#!/usr/bin/perl
# The pipeline: what "nginx -t" refuses in a pipeline folder (naming the
# file and the element), substage outcomes and compatibility.json included,
# GET /pipeline/stages as the files say, crm_pipeline merged http -> server
# -> location, and moving a lead through every stage and substage with its
# history.

use strict;
use warnings;

use File::Path qw(remove_tree make_path);
use POSIX ();
use Test::More;
use Time::HiRes qw(time);
use CrmTest;

my $NIL = '00000000-0000-4000-8000-000000000000';

# --- nginx -t -----------------------------------------------------------------------------
#
# A harness object that is never started: each case copies the repository's
# pipeline into its directory, breaks the copy, and checks the configuration
# with its own error log (as t/090 does).

my $chk = CrmTest->new;
my $cd = $chk->dir;
my $P = $chk->load_pipeline;
cmp_ok(scalar @$P, '>=', 3, 'the repository\'s pipeline has at least three stages');
is_deeply([map { $_->{stage} } @$P],
    [qw(new_account lead demo proposal contract approval customer closed)],
    'its stages are the documented ones, in order');
ok(!grep({ !@{ $_->{substages} } } @$P), 'every stage has substages');
my ($CLOSED) = grep { $P->[$_]{stage} eq 'closed' } 0 .. $#$P;
my %OUTCOMES = (won => 'won', lost => 'lost', no_decision => 'lost', churned => 'churned');
is_deeply([map { [$_->{status}, $_->{outcome}] } @{ $P->[$CLOSED // 0]{substages} }],
    [map { [$_, $OUTCOMES{$_}] } qw(won lost no_decision churned)],
    'closed/substages.json: won, lost, no_decision and churned, each with its outcome');
is_deeply([map { "$_->{stage}/" . join(',', map { $_->{status} } grep { exists $_->{outcome} } @{ $_->{substages} }) }
    grep { $_->{stage} ne 'closed' } @$P], [map { "$_->{stage}/" } grep { $_->{stage} ne 'closed' } @$P],
    '... and no substage of another stage has an outcome');
is_deeply($chk->read_json("$CrmTest::ROOT/pipeline-config/compatibility.json"),
    { parts => [map { { name => $_->[0], weight => $_->[1] } }
        [stage => 30], [score => 25], [contact => 15], [company => 10], [affiliate => 10], [recency => 10]] },
    'compatibility.json: the documented parts and weights');

# the pipeline as GET /pipeline/stages shows it: every substage has an
# "outcome", null where its substages.json entry has none
sub served {
    my ($p) = @_;
    return [map { +{ %$_, substages => [map { +{ outcome => undef, %$_ } } @{ $_->{substages} }] } } @$p];
}

# (ok, what nginx -t printed) for $conf (default: the harness's nginx.conf)
sub nginx_t {
    my ($conf) = @_;
    my $out = "$cd/nginx-t.out";
    unlink $out;
    my $rc = CrmTest::_run_logged($out, $CrmTest::NGINX, '-t', '-p', "$cd/",
        '-c', $conf // "$cd/nginx.conf", '-e', "$cd/nginx-t-error.log");
    return ($rc == 0, CrmTest::_slurp($out));
}

# a fresh copy of the pipeline in $cd/pipeline, edited by $edit, checked
sub check_pipeline {
    my ($edit, %opt) = @_;
    my $pd = $chk->copy_pipeline("$cd/pipeline");
    $edit->($pd) if $edit;
    $chk->{conf} = { crm_pipeline => qq{"$pd"} };
    $chk->{http_extra} = '';
    $chk->{server_extra} = '';
    $chk->write_config(%opt);
    return nginx_t();
}

sub refused {
    my ($name, $edit, @want) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($ok, $out) = check_pipeline($edit);
    ok(!$ok, "nginx -t fails: $name") or diag($out);
    for my $re (@want) {
        like($out, $re, "... and says so: $name");
    }
    unlike($out, qr/segfault|Sanitizer|signal/i, "... without crashing: $name");
}

sub subs_file { my ($pd, $stage) = @_; return "$pd/$stage/substages.json" }

sub edit_subs {
    my ($stage, $cb) = @_;
    return sub {
        my ($pd) = @_;
        my $subs = $chk->read_json(subs_file($pd, $stage));
        $cb->($subs);
        $chk->write_json(subs_file($pd, $stage), $subs);
    };
}

# the n-th element, 0- or 1-based
sub elem { my ($n) = @_; return qr/\[(?:$n|${\($n + 1)})\]/ }

my $S = $P->[1]{stage};                 # "lead"
my $SN = scalar @{ $P->[1]{substages} };
my $PD = "$cd/pipeline";
my $SF = qr/\Q$PD\/$S\/substages.json\E/;
my $STAGES = qr/\Q$PD\/stages.json\E/;

my ($ok, $out) = check_pipeline();
ok($ok, 'nginx -t passes a copy of the repository\'s pipeline') or diag($out);

($ok, $out) = check_pipeline(edit_subs($S, sub {
    $_[0][0]{description} .= ' (edited)';
    $_[0][0]{score} = 100;
    $_[0][-1]{score} = 0;
    push @{ $_[0] }, { status => 'added_one', description => 'Added', score => 7, notes => '' };
}));
ok($ok, 'nginx -t passes an edited pipeline: description, scores 0 and 100, an added substage') or diag($out);

refused('stages.json is not JSON', sub { $chk->write_json("$_[0]/stages.json", '["new_account", "lead",') },
    $STAGES);
refused('stages.json is an object', sub { $chk->write_json("$_[0]/stages.json", { stages => ['lead'] }) },
    $STAGES);
refused('stages.json is missing', sub { unlink "$_[0]/stages.json" }, $STAGES);
refused("$S/substages.json is not JSON", sub { $chk->write_json(subs_file($_[0], $S), '[{"status": "x",') }, $SF);
refused("$S/substages.json is empty", sub { $chk->write_json(subs_file($_[0], $S), '') }, $SF);
refused("$S/substages.json is an empty array", sub { $chk->write_json(subs_file($_[0], $S), []) }, $SF);
refused("the folder of stage $P->[2]{stage} is missing", sub { remove_tree("$_[0]/$P->[2]{stage}") },
    qr/\Q$PD\/$P->[2]{stage}\E/);
refused('a duplicate stage', sub {
    my $st = $chk->read_json("$_[0]/stages.json");
    push @$st, $st->[0];
    $chk->write_json("$_[0]/stages.json", $st);
}, $STAGES, qr/${\ elem(scalar @$P)}|"?\Q$P->[0]{stage}\E"?/);
refused('a stage that is not a string', sub {
    my $st = $chk->read_json("$_[0]/stages.json");
    push @$st, 5;
    $chk->write_json("$_[0]/stages.json", $st);
}, $STAGES);
refused('a stage name with a path in it (../outside)', sub {
    make_path("$cd/outside");
    $chk->write_json("$cd/outside/substages.json", [{ status => 's', description => 'd', score => 1, notes => '' }]);
    my $st = $chk->read_json("$_[0]/stages.json");
    push @$st, '../outside';
    $chk->write_json("$_[0]/stages.json", $st);
}, $STAGES);
refused("a duplicate status in $S", edit_subs($S, sub { push @{ $_[0] }, { %{ $_[0][0] } } }),
    $SF, qr/status/, qr/${\ elem($SN)}|\Q$P->[1]{substages}[0]{status}\E/);
refused("score 101 in $S", edit_subs($S, sub { $_[0][-1]{score} = 101 }), $SF, qr/score/, elem($SN - 1));
refused("score -1 in $S", edit_subs($S, sub { $_[0][0]{score} = -1 }), $SF, qr/score/, elem(0));
refused("score 50.5 in $S", edit_subs($S, sub { $_[0][0]{score} = 50.5 }), $SF, qr/score/);
refused("score \"50\" (a string) in $S", edit_subs($S, sub { $_[0][0]{score} = '50' }), $SF, qr/score/);
refused("score null in $S", edit_subs($S, sub { $_[0][0]{score} = undef }), $SF, qr/score/);
refused("an unknown field in $S", edit_subs($S, sub { $_[0][0]{colour} = 'red' }), $SF, qr/colour/, elem(0));
refused("a substage without description in $S", edit_subs($S, sub { delete $_[0][0]{description} }),
    $SF, qr/description/);
refused("a substage without score in $S", edit_subs($S, sub { delete $_[0][-1]{score} }), $SF, qr/score/);
refused("a substage without status in $S", edit_subs($S, sub { delete $_[0][0]{status} }), $SF, qr/status/);
refused("a substage that is a string in $S", edit_subs($S, sub { push @{ $_[0] }, 'substage' }),
    $SF, elem($SN));

# outcomes: optional, "won", "lost" or "churned", never on the first
# substage of the first stage (where new leads start)
my $F = $P->[0]{stage};
my $FF = qr/\Q$PD\/$F\/substages.json\E/;
($ok, $out) = check_pipeline(sub {
    edit_subs($S, sub { $_[0][0]{outcome} = 'won'; $_[0][1]{outcome} = 'lost'; $_[0][-1]{outcome} = 'churned' })->(@_);
    edit_subs($F, sub { $_[0][-1]{outcome} = 'lost' })->(@_);
});
ok($ok, "nginx -t passes outcomes won, lost and churned in $S and on the last substage of $F") or diag($out);
# null, as GET /pipeline/stages shows an open substage, is no outcome: a
# served substage pasted back into its file is accepted
($ok, $out) = check_pipeline(edit_subs($S, sub { $_[0][-1]{outcome} = undef; $_[0][0]{outcome} = undef }));
ok($ok, "nginx -t passes \"outcome\": null (as served) in $S") or diag($out);
# (the labels are written out: making a number a string would change its JSON)
for my $case (['"open"', 'open'], ['"Won"', 'Won'], ['"won " (a space)', 'won '], ['""', ''],
    ['1', 1], ['true', JSON::PP::true], ['["won"]', ['won']], ['{"won": 1}', { won => 1 }])
{
    my ($shown, $bad) = @$case;
    refused("outcome $shown in $S", edit_subs($S, sub { $_[0][-1]{outcome} = $bad }),
        $SF, qr/${\ elem($SN - 1)}\.outcome/);
}
for my $o (qw(won lost churned)) {
    refused("outcome $o on $F/$P->[0]{substages}[0]{status}, where new leads start",
        edit_subs($F, sub { $_[0][0]{outcome} = $o }), $FF, qr/${\ elem(0)}\.outcome/);
}
refused('closed listed first: its first substage (won) has an outcome', sub {
    my $st = $chk->read_json("$_[0]/stages.json");
    $chk->write_json("$_[0]/stages.json", [(grep { $_ eq 'closed' } @$st), grep { $_ ne 'closed' } @$st]);
}, qr/\Q$PD\/closed\/substages.json\E/, qr/${\ elem(0)}\.outcome/);

# compatibility.json: optional (the documented weights without it), known
# parts at most once each, integer weights 1..100 summing to 100
my $CF = qr/\Q$PD\/compatibility.json\E/;
sub compat {
    my ($cb) = @_;
    return sub {
        my $c = $chk->read_json("$_[0]/compatibility.json");
        $cb->($c, $c->{parts});
        $chk->write_json("$_[0]/compatibility.json", $c);
    };
}
# the parts' element $n, 0- or 1-based, and its field
sub part { my ($n, $field) = @_; return qr/parts${\ elem($n)}\.\Q$field\E/ }

($ok, $out) = check_pipeline(sub { unlink "$_[0]/compatibility.json" or die $! });
ok($ok, 'nginx -t passes a pipeline without compatibility.json') or diag($out);
($ok, $out) = check_pipeline(sub { $chk->write_json("$_[0]/compatibility.json",
    { parts => [{ name => 'recency', weight => 1 }, { name => 'stage', weight => 99 }] }) });
ok($ok, 'nginx -t passes compatibility.json with two parts, weights 1 and 99') or diag($out);
($ok, $out) = check_pipeline(sub { $chk->write_json("$_[0]/compatibility.json",
    { parts => [{ name => 'score', weight => 100 }] }) });
ok($ok, 'nginx -t passes compatibility.json with one part of weight 100') or diag($out);
($ok, $out) = check_pipeline(compat(sub { @{ $_[1] } = reverse @{ $_[1] } }));
ok($ok, 'nginx -t passes compatibility.json with the parts in another order') or diag($out);

refused('compatibility.json is not JSON', sub { $chk->write_json("$_[0]/compatibility.json", '{"parts": [') },
    $CF);
refused('compatibility.json is empty', sub { $chk->write_json("$_[0]/compatibility.json", '') }, $CF);
refused('compatibility.json is an array', sub {
    my $c = $chk->read_json("$_[0]/compatibility.json");
    $chk->write_json("$_[0]/compatibility.json", $c->{parts});
}, $CF);
refused('compatibility.json has a key besides parts', compat(sub { $_[0]{version} = 1 }), $CF, qr/"parts"/);
refused('compatibility.json without parts', sub { $chk->write_json("$_[0]/compatibility.json", {}) },
    $CF, qr/"parts"/);
refused('compatibility.json: parts is an object', compat(sub { $_[0]{parts} = { stage => 100 } }),
    $CF, qr/\bparts: /);
refused('compatibility.json: parts is empty', compat(sub { $_[0]{parts} = [] }), $CF, qr/\bparts: /);
refused('compatibility.json: seven parts', compat(sub { push @{ $_[1] }, { name => 'stage', weight => 1 } }),
    $CF, qr/\bparts: /);
refused('compatibility.json: a part that is a string', compat(sub { $_[1][1] = 'score' }), $CF, qr/parts${\ elem(1)}/);
refused('compatibility.json: an unknown part name', compat(sub { $_[1][2]{name} = 'colour' }),
    $CF, part(2, 'name'));
refused('compatibility.json: a part name in upper case', compat(sub { $_[1][0]{name} = 'STAGE' }),
    $CF, part(0, 'name'));
refused('compatibility.json: a part name that is a number', compat(sub { $_[1][0]{name} = 5 }),
    $CF, part(0, 'name'));
refused('compatibility.json: a part without name', compat(sub { delete $_[1][1]{name} }), $CF, part(1, 'name'));
refused('compatibility.json: a duplicate part', compat(sub { $_[1][3]{name} = $_[1][0]{name} }),
    $CF, part(3, 'name'), qr/duplicate/);
for my $case (['0', 0], ['101', 101], ['-10', -10], ['10.5', 10.5], ['"10" (a string)', '10'], ['null', undef],
    ['true', JSON::PP::true])
{
    my ($shown, $w) = @$case;
    refused("compatibility.json: weight $shown", compat(sub { $_[1][4]{weight} = $w }), $CF, part(4, 'weight'));
}
refused('compatibility.json: weight 1e1', sub { $chk->write_json("$_[0]/compatibility.json",
    '{"parts": [{"name": "stage", "weight": 90}, {"name": "score", "weight": 1e1}]}') }, $CF, part(1, 'weight'));
refused('compatibility.json: a part without weight', compat(sub { delete $_[1][5]{weight} }), $CF, part(5, 'weight'));
refused('compatibility.json: a part with another key', compat(sub { $_[1][1]{colour} = 'red' }),
    $CF, qr/parts${\ elem(1)}/);
refused('compatibility.json: a part with weight twice', sub { $chk->write_json("$_[0]/compatibility.json",
    '{"parts": [{"name": "stage", "weight": 50, "weight": 50}, {"name": "score", "weight": 50}]}') },
    $CF, qr/parts${\ elem(0)}/);
refused('compatibility.json: weights summing to 90 (a part left out)', compat(sub { pop @{ $_[1] } }),
    $CF, qr/the weights sum to 90, not 100/);
refused('compatibility.json: weights summing to 101', compat(sub { $_[1][0]{weight}++ }),
    $CF, qr/the weights sum to 101, not 100/);
refused('compatibility.json: weights summing to 99', compat(sub { $_[1][0]{weight}-- }),
    $CF, qr/the weights sum to 99, not 100/);

# the directive itself
($ok, $out) = check_pipeline(undef, conf => { crm_pipeline => undef });
ok(!$ok, 'nginx -t fails: crm_api without crm_pipeline') or diag($out);
like($out, qr/crm_pipeline/, '... naming crm_pipeline');
($ok, $out) = check_pipeline(undef, conf => { crm_pipeline => "$cd/no-such-pipeline" });
ok(!$ok, 'nginx -t fails: crm_pipeline names a missing folder') or diag($out);
like($out, qr/\Q$cd\/no-such-pipeline\E/, '... naming the folder');
($ok, $out) = check_pipeline(undef, http_extra => "    crm_pipeline \"$cd/pipeline\";\n");
ok(!$ok, 'nginx -t fails: crm_pipeline twice at one level') or diag($out);

# a relative path is resolved against the configuration file's folder, as
# nginx's own file directives are: the same nginx.conf, moved to conf/
# (the prefix stays $cd/), finds conf/pipeline and not $cd/pipeline
make_path("$cd/conf");
check_pipeline(undef, conf => { crm_pipeline => 'pipeline' });
my $conf_text = CrmTest::_slurp("$cd/nginx.conf");
CrmTest::_write_file("$cd/conf/nginx.conf", $conf_text);
($ok, $out) = nginx_t("$cd/conf/nginx.conf");
ok(!$ok, 'nginx -t fails: relative crm_pipeline with the pipeline only beside the prefix, not the conf file')
    or diag($out);
like($out, qr/\Q$cd\/conf\/pipeline\E/, '... naming the path resolved against the conf file\'s folder');
$chk->copy_pipeline("$cd/conf/pipeline");
($ok, $out) = nginx_t("$cd/conf/nginx.conf");
ok($ok, 'nginx -t passes: relative crm_pipeline with the pipeline beside the conf file') or diag($out);
remove_tree("$cd/conf");

# --- the running server: GET /pipeline/stages ------------------------------------------

my $t = CrmTest->new->start;
my ($me, $tok) = $t->member;

my $r = $t->get('/pipeline/stages');
is_problem($r, 401, 'GET /pipeline/stages without a token: 401');
is_problem($t->get("/pipeline/stages/$P->[0]{stage}"), 401, 'GET /pipeline/stages/{stage} without a token: 401');

$r = $t->get('/pipeline/stages', token => $tok);
my $got = is_json_response($r, 200, 'GET /pipeline/stages: 200');
is(ref $got, 'ARRAY', '... a JSON array (not paginated)');
$got = [] unless ref $got eq 'ARRAY';
is_deeply([map { $_->{stage} } @$got], [map { $_->{stage} } @$P], '... the stages of stages.json, in order');
my $base = $got->[0]{position} // -1;
ok($base == 0 || $base == 1, "... positions start at 0 or 1 (got $base)");
is_deeply([map { $_->{position} } @$got], [map { $base + $_ } 0 .. $#$P], '... consecutive positions');
is_deeply([map { [sort keys %$_] } @$got], [map { [qw(position stage substages)] } @$P],
    '... each {stage, position, substages}');
is_deeply([map { $_->{substages} } @$got], [map { $_->{substages} } @{ served($P) }],
    "... substages exactly as each stage's substages.json, with outcome null where it has none");
my $fresh = json_decode($r->{content});
my @not_int = grep { !is_json_int($_->{score}) } map { @{ $_->{substages} || [] } } @$fresh;
is(scalar @not_int, 0, '... every score a JSON integer');
is_deeply([map { [sort keys %$_] } map { @{ $_->{substages} || [] } } @$fresh],
    [map { [qw(description notes outcome score status)] } map { @{ $_->{substages} } } @$P],
    '... every substage {status, description, score, notes, outcome}');
my ($closed) = grep { ($_->{stage} // '') eq 'closed' } @$got;
is_deeply([map { [$_->{status}, $_->{outcome}] } @{ $closed->{substages} || [] }],
    [map { [$_, $OUTCOMES{$_}] } qw(won lost no_decision churned)],
    '... closed: won "won", lost "lost", no_decision "lost", churned "churned"');

for my $i (0 .. $#$got) {
    my $st = $got->[$i]{stage} // next;
    $r = $t->get("/pipeline/stages/$st", token => $tok);
    is_deeply(is_json_response($r, 200, "GET /pipeline/stages/$st: 200"), $got->[$i],
        "... the same object as in the list");
}
for my $bad ('no_such_stage', uc $P->[0]{stage}, "$P->[0]{stage}x", "$P->[0]{stage}%20", 'x' x 300) {
    my $shown = length $bad > 20 ? substr($bad, 0, 10) . '...' : $bad;
    is_problem($t->get("/pipeline/stages/$bad", token => $tok), 404, "GET /pipeline/stages/$shown: 404");
}
is_problem($t->get('/pipeline/stages?foo=1', token => $tok), 422, 'GET /pipeline/stages?foo=1: 422',
    field => 'foo');
$r = $t->request('POST', '/pipeline/stages', token => $tok, content => '{}',
    headers => { 'Content-Type' => 'application/json' });
is_problem($r, 405, 'POST /pipeline/stages: 405');
like($r->{headers}{allow} // '', qr/\bGET\b/, '... Allow: GET');

# --- moving a lead through every stage and substage ---------------------------------------

my $lead = $t->create_lead($tok, name => 'Traveller');
my $id = $lead->{id};
my $version = $lead->{version};
my @path = ([$lead->{stage}, $lead->{substage}, $lead->{score}]);
my @bad_moves;
for my $st (@$P, $P->[0]) {
    for my $sub ($st == $P->[0] && @path > 1 ? ($st->{substages}[0]) : @{ $st->{substages} }) {
        next if $st->{stage} eq $path[-1][0] && $sub->{status} eq $path[-1][1];
        $r = $t->put_json("/leads/$id/stage", { stage => $st->{stage}, substage => $sub->{status} }, token => $tok);
        my $l = $r->{json} // {};
        my $want = "200 $st->{stage}/$sub->{status} $sub->{score} v" . ($version + 1) . ' in';
        my $have = "$r->{status} " . ($l->{stage} // '') . '/' . ($l->{substage} // '') . ' '
            . ($l->{score} // '') . ' v' . ($l->{version} // '') . ($l->{stage_in_pipeline} ? ' in' : ' out');
        push @bad_moves, "want $want, got $have" if $want ne $have;
        $version = $l->{version} // $version + 1;
        push @path, [$st->{stage}, $sub->{status}, $sub->{score}];
    }
}
my $moves = @path - 1;
is_deeply(\@bad_moves, [], "$moves moves through every substage and back to the first stage: "
    . '200, the substage\'s score, version + 1 each');
$r = $t->get("/leads/$id", token => $tok);
is("$r->{json}{stage}/$r->{json}{substage} v$r->{json}{version}", "$path[-1][0]/$path[-1][1] v$version",
    'GET shows the last move');
is($r->{headers}{etag}, qq{"$version"}, '... and its ETag');

my ($hist, $err) = $t->page_all("/leads/$id/history", token => $tok, limit => 200);
ok(!$err, 'GET /leads/{id}/history: every page answered') or diag($err);
is(scalar @$hist, $moves + 1, "... the creation and the $moves moves");
is_deeply([map { [$_->{to_stage}, $_->{to_substage}, $_->{score}] } @$hist], \@path,
    '... oldest first, each with where it went and its score');
is_deeply([map { [$_->{from_stage}, $_->{from_substage}] } @$hist],
    [[undef, undef], map { [@{ $path[$_] }[0, 1]] } 0 .. $#path - 1], '... each from where the one before went');
is_deeply([grep { ($_->{actor_id} // '') ne $me->{id} } @$hist], [], '... each by the owner');
my @times = map { $_->{created_at} // '' } @$hist;
is_deeply([grep { $times[$_] lt $times[$_ - 1] } 1 .. $#times], [], '... in time order');
my %hdup;
is_deeply([grep { $hdup{ $_->{id} // '' }++ } @$hist], [], '... distinct ids');
for my $limit (1, 3) {
    my ($paged, $perr) = $t->page_all("/leads/$id/history", token => $tok, limit => $limit);
    ok(!$perr, "history with limit=$limit: every page answered") or diag($perr);
    is_deeply([map { $_->{id} } @$paged], [map { $_->{id} } @$hist], "history with limit=$limit: each item once, in order");
}
is_problem($t->get("/leads/$id/history?limit=0", token => $tok), 422, 'history limit=0: 422', field => 'limit');
is_problem($t->get("/leads/$id/history?cursor=garbage", token => $tok), 422, 'history cursor=garbage: 422',
    field => 'cursor');
is_problem($t->get("/leads/$id/history?foo=1", token => $tok), 422, 'history ?foo=1: 422', field => 'foo');
is_problem($t->get("/leads/$NIL/history", token => $tok), 404, 'history of a missing lead: 404');

# the same stage and substage again: 200, nothing recorded
$r = $t->put_json("/leads/$id/stage", { stage => $path[-1][0], substage => $path[-1][1] }, token => $tok);
is($r->{status}, 200, 'a move to the current stage and substage: 200') or diag($r->{content});
is("$r->{json}{stage}/$r->{json}{substage}", "$path[-1][0]/$path[-1][1]", '... the lead as it was');
my ($hist2) = $t->page_all("/leads/$id/history", token => $tok, limit => 200);
is(scalar @$hist2, scalar @$hist, '... and no new history item');

# refused moves change nothing
my $before = $t->get("/leads/$id", token => $tok)->{json};
my $S2 = $P->[2];
my ($foreign) = grep { my $s = $_; !grep { $_->{status} eq $s } @{ $S2->{substages} } }
    map { $_->{status} } map { @{ $_->{substages} } } @$P;
my @refuse = (
    ['{}', {}, undef],
    ['stage only', { stage => $S2->{stage} }, 'substage'],
    ['substage only', { substage => $S2->{substages}[0]{status} }, 'stage'],
    ['an unknown stage', { stage => 'no_such_stage', substage => $S2->{substages}[0]{status} }, 'stage',
        'no_such_stage'],
    ['an unknown substage', { stage => $S2->{stage}, substage => 'no_such_substage' }, 'substage',
        'no_such_substage'],
    ['stage as a number', { stage => 5, substage => 'x' }, 'stage'],
    ['substage null', { stage => $S2->{stage}, substage => undef }, 'substage'],
    ['substage as an array', { stage => $S2->{stage}, substage => [] }, 'substage'],
    ['an extra field', { stage => $S2->{stage}, substage => $S2->{substages}[0]{status}, score => 100 }, 'score'],
    ['the stage name in upper case', { stage => uc $S2->{stage}, substage => $S2->{substages}[0]{status} },
        'stage'],
    (defined $foreign
        ? (["a substage of another stage ($foreign)", { stage => $S2->{stage}, substage => $foreign }, 'substage',
            $foreign])
        : ()),
);
for my $case (@refuse) {
    my ($what, $body, $field, $named) = @$case;
    $r = $t->put_json("/leads/$id/stage", $body, token => $tok);
    is_problem($r, 422, "stage move with $what: 422", defined $field ? (field => $field) : ());
    like($r->{json}{detail} // '', qr/\Q$named\E/, "... the detail names '$named'") if defined $named;
}
is_problem($t->put_json("/leads/$NIL/stage", { stage => $S2->{stage}, substage => $S2->{substages}[0]{status} },
    token => $tok), 404, 'stage move of a missing lead: 404');
is_problem($t->put_json('/leads/not-a-uuid/stage', { stage => $S2->{stage}, substage => $S2->{substages}[0]{status} },
    token => $tok), 404, 'stage move of a non-UUID: 404');
is_deeply($t->get("/leads/$id", token => $tok)->{json}, $before, 'the refused moves changed nothing');
my ($hist3) = $t->page_all("/leads/$id/history", token => $tok, limit => 200);
is(scalar @$hist3, scalar @$hist, '... and recorded nothing');

# --- concurrent moves of one lead: the history is one unbroken chain ------------------------
#
# Every client moves the lead back and forth between the same two places,
# so clients often ask for the place the lead has just reached: such a
# move is the "already there" case and records nothing.

my $busy = $t->create_lead($tok, name => 'Busy');
my @targets = map { [$_->{stage}, $_->{substages}[-1]{status}] } @$P[0, 1];
my ($CLIENTS, $MOVES) = (4, 15);
my $start = time + 0.5;
my @clients;
for my $k (1 .. $CLIENTS) {
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork // die "fork: $!";
    if (!$pid) {
        close $rd;
        $SIG{ALRM} = 'DEFAULT';
        alarm 30;
        my $ua = HTTP::Tiny->new(timeout => 10, keep_alive => 1);
        select(undef, undef, undef, $start - time) if $start > time;
        my %n;
        for my $j (1 .. $MOVES) {
            my ($st, $sub) = @{ $targets[$j % 2] };
            my $res = $ua->request('PUT', $t->base_url . "/leads/$busy->{id}/stage", { headers => {
                Authorization => "Bearer $tok", 'Content-Type' => 'application/json' },
                content => json_encode({ stage => $st, substage => $sub }) });
            $n{ $res->{status} }++;
        }
        print $wr "$_ $n{$_}\n" for sort keys %n;
        close $wr;
        POSIX::_exit(0);
    }
    close $wr;
    push @clients, [$pid, $rd];
}
my %moved;
for my $c (@clients) {
    my ($pid, $rd) = @$c;
    while (my $line = <$rd>) {
        my ($status, $n) = split ' ', $line;
        $moved{$status} += $n;
    }
    waitpid $pid, 0;
}
is_deeply(\%moved, { 200 => $CLIENTS * $MOVES }, "$CLIENTS clients moving one lead $MOVES times each: all 200");
my ($chain, $cerr) = $t->page_all("/leads/$busy->{id}/history", token => $tok, limit => 200);
ok(!$cerr, '... its history answers') or diag($cerr);
my @breaks = grep { ($chain->[$_]{from_stage} // '') ne ($chain->[$_ - 1]{to_stage} // '')
    || ($chain->[$_]{from_substage} // '') ne ($chain->[$_ - 1]{to_substage} // '') } 1 .. $#$chain;
is_deeply(\@breaks, [], '... each item starts where the one before ended (' . scalar(@$chain) . ' items)');
my @noop = grep { $_->{from_stage} && $_->{from_stage} eq $_->{to_stage} && $_->{from_substage} eq $_->{to_substage} }
    @$chain;
is(scalar @noop, 0, '... no item that moves nowhere')
    or diag(join "\n", map { json_encode($_) } @noop[0 .. ($#noop < 4 ? $#noop : 4)]);
$r = $t->get("/leads/$busy->{id}", token => $tok);
is("$r->{json}{stage}/$r->{json}{substage}", "$chain->[-1]{to_stage}/$chain->[-1]{to_substage}",
    '... and the lead is where the last item went');
is($r->{json}{score}, $chain->[-1]{score}, '... with that score');

# --- crm_pipeline merged: http, server, location ---------------------------------------------

my $alt = $t->copy_pipeline($t->dir . '/alt-pipeline');
my $alt_stages = $t->read_json("$alt/stages.json");
my $dropped = pop @$alt_stages;
$t->write_json("$alt/stages.json", $alt_stages);
my $asubs = $t->read_json("$alt/$alt_stages->[0]/substages.json");
$asubs->[0]{description} = 'ALT PIPELINE';
$t->write_json("$alt/$alt_stages->[0]/substages.json", $asubs);
my $ALT = served($t->load_pipeline($alt));
my $SERVED = served($P);

ok($t->reconfigure(server_extra => "        location /pipeline/stages/ { crm_api; crm_pipeline \"$alt\"; }\n"),
    'reload: a location with a crm_pipeline of its own');
$r = $t->get('/pipeline/stages/', token => $tok);
is_deeply([map { $_->{substages} } @{ $r->{json} || [] }], [map { $_->{substages} } @$ALT],
    'GET /pipeline/stages/ (that location): its own pipeline');
$r = $t->get('/pipeline/stages', token => $tok);
is_deeply([map { $_->{substages} } @{ $r->{json} || [] }], [map { $_->{substages} } @$SERVED],
    'GET /pipeline/stages (location /): the http-level pipeline');
is_problem($t->get("/pipeline/stages/$dropped", token => $tok), 404,
    "GET /pipeline/stages/$dropped in that location: 404 (not in its pipeline)");

ok($t->reconfigure(server_extra => "        crm_pipeline \"$alt\";\n"), 'reload: crm_pipeline at server level');
$r = $t->get('/pipeline/stages', token => $tok);
is_deeply([map { $_->{substages} } @{ $r->{json} || [] }], [map { $_->{substages} } @$ALT],
    'GET /pipeline/stages: the server-level pipeline');
$r = $t->put_json("/leads/$id/stage", { stage => $dropped, substage => $P->[-1]{substages}[0]{status} },
    token => $tok);
is_problem($r, 422, "a move to $dropped, not in the server's pipeline: 422", field => 'stage');

ok($t->reconfigure(server_extra => ''), 'reload: back to the http-level pipeline');
$r = $t->get('/pipeline/stages', token => $tok);
is(scalar @{ $r->{json} || [] }, scalar @$P, 'GET /pipeline/stages: all the stages again');

$t->done;
