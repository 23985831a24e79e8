# SPDX-License-Identifier: GPL-2.0-only
"""make series: the cover letter comes from results/, and the check of b4's output
rejects what a posting must not look like."""
import json
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import series  # noqa: E402

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TREE = {'base': '0123456789abcdef', 'base_subject': 'Debian linux-source-6.12 x',
        'doc_patch': 17}


class Cover(unittest.TestCase):
    def setUp(self):
        self.d = tempfile.mkdtemp()
        for f in ('bench.json', 'bench.md', 'regimes.json', 'scale.json'):
            shutil.copy(os.path.join(TOP, 'results', f), self.d)

    def tearDown(self):
        shutil.rmtree(self.d)

    def test_rows_are_the_bench_results(self):
        with open(os.path.join(self.d, 'bench.json')) as f:
            doc = json.load(f)
        cover = series.cover_text(self.d, TREE)
        pool = [r for r in doc['runs'] if r['mode'] == 'pool']
        self.assertTrue(pool)
        for r in pool:
            self.assertIn('%.3f [%.3f-%.3f]' % (r['vs_strict_median'], r['vs_strict_ci_low'],
                                                r['vs_strict_ci_high']), cover)
        # a changed result changes the letter: nothing in it is typed
        pool[0]['vs_strict_median'] = 9.876
        with open(os.path.join(self.d, 'bench.json'), 'w') as f:
            json.dump(doc, f)
        self.assertIn('9.876 [', series.cover_text(self.d, TREE))

    def test_lines_fit_a_mail(self):
        for line in series.cover_text(self.d, TREE).splitlines():
            self.assertLessEqual(len(line), 75, line)

    def test_missing_results_is_an_error(self):
        os.unlink(os.path.join(self.d, 'scale.json'))
        with self.assertRaises(series.SeriesError):
            series.cover_text(self.d, TREE)


class Output(unittest.TestCase):
    DIFF = ('---\n a | 1 +\n\ndiff --git a/a b/a\nindex 0000000..1111111 100644\n'
            '--- a/a\n+++ b/a\n@@ -1 +1,2 @@\n x\n+%s\n-- \n2.39.5\n')

    def mails(self, d, n, to='iommu@lists.linux.dev', subject=series.SUBJECT, diff='y'):
        body = 'x\n\npool/strict\nChanges since the RFC\nbase-commit: 0123\n'
        os.makedirs(os.path.join(d, 'patches'))
        for i in range(n + 1):
            s = subject if i == 0 else 'patch %d' % i
            text = body if i == 0 else 'why\n\n' + self.DIFF % ('%s%d' % (diff, i))
            with open(os.path.join(d, '%04d.eml' % i), 'w') as f:
                f.write('From: a <a@b>\nTo: %s\nSubject: [PATCH %02d/%02d] %s\n\n%s'
                        % (to, i, n, s, text))
            if i:
                with open(os.path.join(d, 'patches', '%04d-p.patch' % i), 'w') as f:
                    f.write('From: a <a@b>\nSubject: [PATCH] patch %d\n\nwhy\n\n%s'
                            % (i, self.DIFF % ('y%d' % i)))

    def test_a_good_posting_passes(self):
        d = tempfile.mkdtemp()
        try:
            self.mails(d, 3)
            subj, to, cc = series.check_output(d, 3, '', os.path.join(d, 'patches'))
            self.assertEqual(len(subj), 4)
            self.assertIn('iommu@lists.linux.dev', to)
        finally:
            shutil.rmtree(d)

    def test_base_commit_set_to_the_fork_point(self):
        # b4 0.12 writes the fork point's parent, here "BASE~1"; the check wants BASE
        d = tempfile.mkdtemp()
        try:
            self.mails(d, 3)
            p = os.path.join(d, 'patches')
            with self.assertRaisesRegex(series.SeriesError, 'base-commit is not'):
                series.check_output(d, 3, '', p, base='0123abc')
            series.fix_base_commit(d, '0123abc')
            series.check_output(d, 3, '', p, base='0123abc')
        finally:
            shutil.rmtree(d)

    def test_wrong_count_or_list_or_subject_rejected(self):
        for kw, n_files, why in (({}, 2, 'holds 3 messages'),
                                 ({'to': 'someone@else'}, 3, 'IOMMU list'),
                                 ({'subject': 'other'}, 3, 'cover letter subject'),
                                 ({'diff': 'z'}, 3, 'is not')):
            d = tempfile.mkdtemp()
            try:
                self.mails(d, n_files, **kw)
                with self.assertRaisesRegex(series.SeriesError, why):
                    series.check_output(d, 3, '', os.path.join(d, 'patches'))
            finally:
                shutil.rmtree(d)


if __name__ == '__main__':
    unittest.main()
