<?php
// Uses extensions the image enables in conf.d: pdo_sqlite, mbstring, json (core), ctype.
header('Content-Type: text/plain');
$db = new PDO('sqlite::memory:');
$db->exec('create table t (name text)');
$st = $db->prepare('insert into t values (?)');
foreach (['Ærøskøbing', 'Zürich', 'Kraków'] as $n) { $st->execute([$n]); }
$rows = $db->query('select name from t order by name')->fetchAll(PDO::FETCH_COLUMN);
echo json_encode(['rows' => $rows, 'upper' => array_map('mb_strtoupper', $rows), 'len' => array_map('mb_strlen', $rows)], JSON_UNESCAPED_UNICODE), "\n";
echo 'sqlite ', $db->query('select sqlite_version()')->fetchColumn() !== '' ? 'ok' : 'missing', "\n";
echo 'ctype ', ctype_digit('2024') ? 'yes' : 'no', "\n";
echo 'extensions ', implode(',', array_intersect(['PDO', 'pdo_sqlite', 'mbstring', 'json', 'ctype'], get_loaded_extensions())), "\n";
