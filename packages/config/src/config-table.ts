import { SETTINGS, type SettingSpec } from './settings';

/** Renders the settings table as the Markdown the README carries (generated, never hand-edited). */
export function renderConfigTable(settings: readonly SettingSpec[] = SETTINGS): string {
  const rows = settings.map((spec) => {
    const services = spec.services === 'all' ? 'all' : spec.services.map((s) => `\`${s}\``).join(', ');
    return `| \`${spec.name}\` | ${cell(spec.default)} | ${services} | ${cell(spec.description)} |`;
  });
  return ['| variable | default | services | description |', '|---|---|---|---|', ...rows].join('\n') + '\n';
}

// A pipe inside a cell would end the cell.
function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
